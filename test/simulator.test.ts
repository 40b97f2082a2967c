import t from 'tap'
import { Agent, request } from 'undici'
import { Simulator, startSimulator } from '../lib/simulator'
import type { SimulatorOptions } from '../lib/simulator'

const KEY = 'vibe_api_test_key'
const APP_KEY = 'vibe_app_test_key'
const LOG = '/v1/workflows/activity-log'
const EVENT = '/v1/workflows/event'
const LOG_PARAMS = 'Required: eventToken (string), logMessage (string)'
const REPEAT_WARNING = 'The same error repeats on this key: the client most likely has a bug'

// One keep-alive agent for the whole file, like the transport uses, so that
// connection reuse after errors, 413s and drops is exercised too.
const agent = new Agent({ keepAliveTimeout: 1000 })
t.teardown(() => agent.close())

interface CallOptions {
  path?: string
  method?: string
  body?: unknown
  raw?: string
  // null removes one of the default headers
  headers?: Record<string, string | null>
  signal?: AbortSignal
}

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: any
}

async function call (sim: Simulator, opts: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = {}
  const given = { 'content-type': 'application/json', 'x-api-key': KEY, ...opts.headers }
  for (const [name, value] of Object.entries(given)) {
    if (value !== null) headers[name] = value
  }
  const method = opts.method ?? 'POST'
  const body = opts.raw ?? (method === 'POST' ? JSON.stringify(opts.body ?? { eventToken: 'tok', logMessage: 'hello' }) : undefined)
  const res = await request(sim.url + (opts.path ?? LOG), { method: method as 'POST', headers, body, dispatcher: agent, signal: opts.signal })
  const text = await res.body.text()
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.statusCode, headers: res.headers, text, json }
}

function log (eventToken: string, logMessage: unknown): CallOptions {
  return { body: { eventToken, logMessage } }
}

async function started (tt: tap.Test, opts?: SimulatorOptions): Promise<Simulator> {
  const sim = await Simulator.start(opts)
  tt.teardown(() => sim.close())
  return sim
}

async function until (cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise(resolve => setTimeout(resolve, 5))
}

function errorOf (reply: Reply): { status: number, code: string } {
  return { status: reply.status, code: reply.json.error.code }
}

t.test('defaults: listens on loopback and records a trimmed entry', async tt => {
  const sim = await started(tt)
  tt.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const reply = await call(sim, { ...log('tok', '  hello world \n'), path: `${LOG}?trace=1` })
  tt.equal(reply.status, 200)
  tt.equal(reply.headers['content-type'], 'application/json')
  tt.same(reply.json, { success: true, data: null })
  tt.same(sim.entries('tok'), ['hello world'])
  tt.same(sim.entries('other'), [])
  tt.equal(sim.requests.length, 1)
  const [rec] = sim.requests
  tt.equal(rec.method, 'POST')
  tt.equal(rec.path, LOG)
  tt.equal(rec.headers['x-api-key'], KEY)
  tt.same(rec.body, { eventToken: 'tok', logMessage: '  hello world \n' })
  tt.equal(rec.status, 200)
  tt.equal(rec.code, undefined)
  tt.type(rec.at, 'number')
})

t.test('startSimulator with every option given', async tt => {
  let clock = 5000
  const sim = await startSimulator({
    host: '127.0.0.1',
    port: 0,
    apiKeys: ['vibe_api_mine'],
    appKeys: ['vibe_app_mine'],
    sessionTokens: ['s-ok'],
    expiredSessionTokens: ['s-old'],
    rateLimit: { rps: 100, burst: 100 },
    latency: 1,
    now: () => clock
  })
  tt.teardown(() => sim.close())
  tt.equal((await call(sim, { headers: { 'x-api-key': KEY } })).status, 401, 'default key no longer accepted')
  tt.equal((await call(sim, { headers: { 'x-api-key': 'vibe_api_mine' } })).status, 200)
  tt.equal((await call(sim, { headers: { 'x-api-key': 'vibe_app_mine', authorization: 'Bearer s-ok' } })).status, 200)
  const expired = await call(sim, { headers: { 'x-api-key': 'vibe_app_mine', authorization: 'Bearer s-old' } })
  tt.same(errorOf(expired), { status: 401, code: 'TOKEN_EXPIRED' })
  clock = 6000
  await call(sim, { headers: { 'x-api-key': 'vibe_api_mine' } })
  tt.equal(sim.requests.at(-1)?.at, 6000, 'injected clock stamps requests')
})

t.test('IPv6 loopback gets a bracketed URL', async tt => {
  const sim = await started(tt, { host: '::1' })
  tt.match(sim.url, /^http:\/\/\[::1\]:\d+$/)
  tt.equal((await call(sim)).status, 200)
})

t.test('start rejects when the port is taken; close twice is fine', async tt => {
  const sim = await Simulator.start()
  const port = Number(new URL(sim.url).port)
  await tt.rejects(Simulator.start({ port }), { code: 'EADDRINUSE' })
  await sim.close()
  await sim.close()
})

t.test('authentication errors', async tt => {
  const sim = await started(tt)
  const missing = await call(sim, { headers: { 'x-api-key': null } })
  tt.same(missing.json, {
    success: false,
    error: { code: 'MISSING_API_KEY', message: 'X-Api-Key header not provided' }
  })
  tt.equal(missing.status, 401)
  tt.same(errorOf(await call(sim, { headers: { 'x-api-key': 'vibe_api_nope' } })), { status: 401, code: 'INVALID_API_KEY' })
  tt.same(errorOf(await call(sim, { headers: { 'x-api-key': APP_KEY } })), { status: 401, code: 'INVALID_APP_KEY' })
  tt.same(errorOf(await call(sim, { headers: { 'x-api-key': APP_KEY, authorization: 'Basic abc' } })), { status: 401, code: 'INVALID_APP_KEY' })
  tt.same(errorOf(await call(sim, { headers: { 'x-api-key': APP_KEY, authorization: 'Bearer unknown' } })), { status: 401, code: 'INVALID_API_KEY' })
  tt.equal((await call(sim, { headers: { 'x-api-key': APP_KEY, authorization: 'Bearer session_test_token' } })).status, 200)
  tt.same(sim.entries('tok'), ['hello'], 'only the authenticated call landed')
})

t.test('expired session on the default simulator', async tt => {
  const sim = await started(tt, { expiredSessionTokens: ['old'] })
  const reply = await call(sim, { headers: { 'x-api-key': APP_KEY, authorization: 'bearer old' } })
  tt.same(reply.json.error, {
    code: 'TOKEN_EXPIRED',
    message: 'The OAuth user session has expired',
    hint: 'Reauthorize via /v1/oauth/authorize'
  })
})

t.test('request shape errors', async tt => {
  const sim = await started(tt)
  const badJson = await call(sim, { raw: '{"eventToken":' })
  tt.same(badJson.json, { success: false, error: { code: 'MISSING_PARAMS', message: LOG_PARAMS } })
  tt.equal(badJson.status, 400)
  tt.equal(sim.requests[0].body, '{"eventToken":', 'unparsable body recorded raw')
  const cases: CallOptions[] = [
    { raw: '[1,2]' },
    { raw: '"a string"' },
    { body: { logMessage: 'x' } },
    log('', 'x'),
    log('tok', undefined),
    log('tok', 42),
    { ...log('tok', 'x'), headers: { 'content-type': 'text/plain' } },
    { ...log('tok', 'x'), headers: { 'content-type': null } }
  ]
  for (const c of cases) tt.same(errorOf(await call(sim, c)), { status: 400, code: 'MISSING_PARAMS' }, JSON.stringify(c))
  tt.equal((await call(sim, { ...log('tok', 'x'), headers: { 'content-type': 'Application/JSON; charset=utf-8' } })).status, 200)

  const empty = await call(sim, log('tok', ' \n\t '))
  tt.same(errorOf(empty), { status: 422, code: 'BITRIX_ERROR' })
  tt.same(sim.entries('tok'), ['x'])
})

t.test('routing: 404, 405, 413', async tt => {
  const sim = await started(tt)
  const notFound = await call(sim, { path: '/v1/workflows/nope' })
  tt.same(errorOf(notFound), { status: 404, code: 'NOT_FOUND' })
  tt.equal(notFound.json.success, false)
  const wrongMethod = await call(sim, { method: 'GET' })
  tt.same(errorOf(wrongMethod), { status: 405, code: 'METHOD_NOT_ALLOWED' })
  tt.equal(wrongMethod.headers.allow, 'POST')

  const huge = await call(sim, log('tok', 'x'.repeat(1024 * 1024)))
  tt.same(errorOf(huge), { status: 413, code: 'PAYLOAD_TOO_LARGE' })
  tt.equal(sim.requests.at(-1)?.body, undefined, 'oversized body is not kept')
  tt.equal((await call(sim)).status, 200, 'the server keeps answering after a 413')
  tt.same(sim.entries('tok'), ['hello'])
})

t.test('event completes the activity; later logs are silently ignored', async tt => {
  const sim = await started(tt)
  await call(sim, log('tok', 'step 1'))
  const done = await call(sim, { path: EVENT, body: { eventToken: 'tok', returnValues: { ok: 'Y' }, logMessage: ' done ' } })
  tt.same(done.json, { success: true, data: null })
  tt.same(sim.event('tok'), { eventToken: 'tok', returnValues: { ok: 'Y' }, logMessage: 'done' })
  tt.same(sim.entries('tok'), ['step 1', 'done'], 'the event message is written to the log')

  const late = await call(sim, log('tok', ' late '))
  tt.same(late.json, { success: true, data: null })
  tt.same(sim.entries('tok'), ['step 1', 'done'])
  tt.same(sim.ignored('tok'), ['late'])
  tt.same(sim.ignored('other'), [])

  tt.same(errorOf(await call(sim, { path: EVENT, body: { eventToken: 'tok' } })), { status: 403, code: 'BITRIX_ACCESS_DENIED' })

  sim.finishWorkflow('tok')
  tt.same(errorOf(await call(sim, log('tok', 'after finish'))), { status: 403, code: 'BITRIX_ACCESS_DENIED' })
  tt.same(sim.ignored('tok'), ['late'])
  tt.equal(sim.event('missing'), undefined)
})

t.test('a workflow keeps its newest 50 rows; the event message is one of them; erased rows are counted', async tt => {
  const sim = await started(tt)
  for (let i = 0; i < 52; i++) await call(sim, log('tok', `row ${i}`))
  await call(sim, log('other', 'alone'))
  await call(sim, { path: EVENT, body: { eventToken: 'tok', logMessage: 'done' } })
  const rows = sim.entries('tok')
  tt.equal(rows.length, 50)
  tt.equal(rows[0], 'row 3', 'the three oldest rows are gone')
  tt.equal(rows[49], 'done', 'the event message counts as a row')
  tt.equal(sim.erased('tok'), 3)
  tt.equal(sim.erased('other'), 0)
  tt.match(sim.stats(), { rows: 54, rowsErased: 3 })
  sim.reset()
  tt.equal(sim.erased('tok'), 0)
  tt.match(sim.stats(), { rows: 0, rowsErased: 0 })
})

t.test('keepRows changes how many rows a workflow keeps; 0 keeps every row', async tt => {
  const three = await started(tt, { keepRows: 3 })
  for (let i = 0; i < 5; i++) await call(three, log('tok', `row ${i}`))
  tt.same(three.entries('tok'), ['row 2', 'row 3', 'row 4'])
  tt.equal(three.erased('tok'), 2)
  const all = await started(tt, { keepRows: 0 })
  for (let i = 0; i < 60; i++) await call(all, log('tok', `row ${i}`))
  tt.equal(all.entries('tok').length, 60)
  tt.equal(all.erased('tok'), 0)
})

t.test('maxRecorded keeps the newest requests only, never more than the cap', async tt => {
  const sim = await started(tt, { maxRecorded: 4 })
  for (let i = 0; i < 9; i++) {
    await call(sim, log('tok', `row ${i}`))
    tt.ok(sim.requests.length <= 4, `${sim.requests.length} kept`)
  }
  // Past the cap it forgets down to half: 4 → rows 3, 4 kept at the fifth, rows 6, 7 at the eighth.
  tt.same(sim.requests.map((r) => (r.body as { logMessage: string }).logMessage), ['row 6', 'row 7', 'row 8'])
  tt.equal((sim.requests.at(-1)?.body as { logMessage: string }).logMessage, 'row 8', 'the newest is kept')
  tt.equal(sim.entries('tok').length, 9, 'the rows are not what it forgets')
})

t.test('event body variants', async tt => {
  const sim = await started(tt)
  await call(sim, { path: EVENT, body: { eventToken: 'a' } })
  tt.same(sim.event('a'), { eventToken: 'a', returnValues: {} })
  tt.notOk('logMessage' in (sim.event('a') ?? {}))
  await call(sim, { path: EVENT, body: { eventToken: 'b', logMessage: '   ' } })
  tt.same(sim.event('b'), { eventToken: 'b', returnValues: {}, logMessage: '' })
  tt.same(sim.entries('b'), [], 'an empty event message writes nothing')

  const message = 'Required: eventToken (string); optional: returnValues (object), logMessage (string)'
  for (const body of [{ eventToken: 'c', returnValues: [1] }, { eventToken: 'c', returnValues: null }, { eventToken: 'c', logMessage: 5 }, {}]) {
    const reply = await call(sim, { path: EVENT, body })
    tt.has(reply.json.error, { code: 'MISSING_PARAMS', message }, JSON.stringify(body))
  }
  tt.equal(sim.event('c'), undefined)
})

t.test('killToken answers 403 on both endpoints', async tt => {
  const sim = await started(tt)
  await call(sim, log('tok', 'first'))
  sim.killToken('tok')
  tt.same(errorOf(await call(sim, log('tok', 'second'))), { status: 403, code: 'BITRIX_ACCESS_DENIED' })
  tt.same(errorOf(await call(sim, { path: EVENT, body: { eventToken: 'tok' } })), { status: 403, code: 'BITRIX_ACCESS_DENIED' })
  tt.same(sim.entries('tok'), ['first'])
  tt.equal(sim.event('tok'), undefined)
})

t.test('rate limit per key with an injected clock', async tt => {
  let clock = 0
  const sim = await started(tt, {
    apiKeys: [KEY, 'vibe_api_other'],
    rateLimit: { rps: 2, burst: 2 },
    now: () => clock
  })
  tt.equal((await call(sim)).status, 200)
  tt.equal((await call(sim)).status, 200)
  const limited = await call(sim)
  tt.equal(limited.status, 429)
  tt.equal(limited.headers['retry-after'], '1')
  tt.same(limited.json.error, { code: 'RATE_LIMITED', message: 'Request rate limit exceeded', hint: 'Retry in 1-2 seconds', retryAfter: 1 })
  tt.equal((await call(sim, { headers: { 'x-api-key': 'vibe_api_other' } })).status, 200, 'another key has its own bucket')

  clock = 499
  tt.equal((await call(sim)).status, 429, 'not yet a whole token')
  clock = 500
  tt.equal((await call(sim)).status, 200, 'one token refilled after 500 ms')
  clock = 100000
  tt.equal((await call(sim)).status, 200)
  tt.equal((await call(sim)).status, 200)
  tt.equal((await call(sim)).status, 429, 'refill is capped at burst')

  clock = 0
  tt.equal((await call(sim)).status, 429, 'a clock going backwards refills nothing')

  sim.setRateLimit({ rps: 0.25, burst: 1 })
  tt.equal((await call(sim)).status, 200)
  const slow = await call(sim)
  tt.equal(slow.json.error.retryAfter, 4)
  tt.equal(slow.headers['retry-after'], '4')

  sim.setRateLimit(null)
  for (let i = 0; i < 5; i++) tt.equal((await call(sim)).status, 200)
  tt.equal(sim.entries('tok').length, 12)
})

t.test('rate limit can be switched on at runtime', async tt => {
  const sim = await started(tt)
  sim.setRateLimit({ rps: 1, burst: 1 })
  tt.equal((await call(sim)).status, 200)
  tt.equal((await call(sim)).status, 429)
})

t.test('warning when the same error repeats on one key', async tt => {
  const sim = await started(tt)
  const bad = { headers: { 'x-api-key': 'vibe_api_bad' } }
  tt.equal((await call(sim, bad)).json.error.warning, undefined)
  tt.equal((await call(sim, bad)).json.error.warning, undefined)
  tt.equal((await call(sim, bad)).json.error.warning, REPEAT_WARNING)
  tt.equal((await call(sim, bad)).json.error.warning, REPEAT_WARNING)

  const empty = log('tok', ' ')
  tt.equal((await call(sim, empty)).json.error.warning, undefined)
  tt.equal((await call(sim, empty)).json.error.warning, undefined)
  tt.equal((await call(sim, log('tok', 5))).json.error.warning, undefined, 'a different code starts over')
  tt.equal((await call(sim, empty)).json.error.warning, undefined)
  tt.equal((await call(sim, empty)).json.error.warning, undefined)
  tt.equal((await call(sim)).status, 200)
  tt.equal((await call(sim, empty)).json.error.warning, undefined, 'a success starts over')
  tt.equal((await call(sim, empty)).json.error.warning, undefined)
  tt.equal((await call(sim, empty)).json.error.warning, REPEAT_WARNING)
})

t.test('the keys it counts repeats for are bounded: a client that sends a new wrong key each time', async tt => {
  const sim = await started(tt)
  const bad = { headers: { 'x-api-key': 'vibe_api_bad' } }
  await call(sim, bad)
  await call(sim, bad)
  for (let i = 0; i < 1000; i++) await call(sim, { headers: { 'x-api-key': `vibe_api_wrong_${i}` } })
  tt.equal((await call(sim, bad)).json.error.warning, undefined, 'past 1,000 keys it starts over: no third repeat remembered')
  tt.equal((await call(sim, bad)).json.error.warning, undefined)
  tt.equal((await call(sim, bad)).json.error.warning, REPEAT_WARNING, 'and counts again')
})

t.test('maxWorkflows forgets the oldest workflow past the cap', async tt => {
  const sim = await started(tt, { maxWorkflows: 2 })
  await call(sim, log('wf.1', 'one'))
  await call(sim, { path: EVENT, body: { eventToken: 'wf.1' } })
  await call(sim, log('wf.2', 'two'))
  tt.same(sim.entries('wf.1'), ['one'])
  tt.ok(sim.event('wf.1'))
  await call(sim, log('wf.3', 'three'))
  tt.same([sim.entries('wf.1'), sim.event('wf.1'), sim.entries('wf.2'), sim.entries('wf.3')], [[], undefined, ['two'], ['three']])
  tt.equal(sim.stats().rows, 3, 'the counters are not what it forgets')
})

t.test('scripted answers', async tt => {
  const sim = await started(tt)
  sim.script(
    { status: 502, code: 'BITRIX_UNAVAILABLE', message: 'down', hint: 'later', warning: 'w', retryAfter: 3 },
    { code: 'RATE_LIMITED' },
    { status: 418 },
    { code: 'SOMETHING_NEW' },
    { body: 'not json' },
    { status: 200, body: '<html>', headers: { 'Content-Type': 'text/html' } },
    { status: 503, headers: { 'Retry-After': 'Wed, 21 Oct 2026 07:28:00 GMT' } },
    { status: 200 },
    { status: 504, code: 'QUEUE_TIMEOUT', retryAfter: 2, headers: { 'retry-after': '2' } }
  )
  // Scripts apply before auth, so even a keyless request gets them.
  const first = await call(sim, { headers: { 'x-api-key': null } })
  tt.equal(first.status, 502)
  tt.same(first.json, { success: false, error: { code: 'BITRIX_UNAVAILABLE', message: 'down', hint: 'later', warning: 'w', retryAfter: 3 } })
  tt.equal(first.headers['retry-after'], undefined, 'retryAfter goes in the body only')

  const second = await call(sim)
  tt.same(second.json, { success: false, error: { code: 'RATE_LIMITED', message: 'Simulated RATE_LIMITED' } })
  tt.equal(second.status, 429)
  tt.same(errorOf(await call(sim)), { status: 418, code: 'INTERNAL_ERROR' }, 'unknown status: generic code')
  tt.same(errorOf(await call(sim)), { status: 500, code: 'SOMETHING_NEW' }, 'unknown code: status 500')

  const raw = await call(sim)
  tt.equal(raw.status, 500)
  tt.equal(raw.text, 'not json')
  tt.equal(raw.headers['content-type'], 'application/json')
  const html = await call(sim)
  tt.equal(html.status, 200)
  tt.equal(html.text, '<html>')
  tt.equal(html.headers['content-type'], 'text/html')

  const unavailable = await call(sim)
  tt.equal(unavailable.status, 503)
  tt.equal(unavailable.headers['retry-after'], 'Wed, 21 Oct 2026 07:28:00 GMT')
  tt.equal(unavailable.json.error.code, 'INTERNAL_ERROR')

  const fakeOk = await call(sim)
  tt.same(fakeOk.json, { success: true, data: null })
  const queue = await call(sim)
  tt.equal(queue.headers['retry-after'], '2')
  tt.equal(queue.json.error.retryAfter, 2)

  tt.same(sim.entries('tok'), [], 'scripted answers never land')
  tt.equal((await call(sim)).status, 200, 'scripts are one-shot')
  tt.same(sim.entries('tok'), ['hello'])
  tt.same(sim.requests.map(r => r.code), [
    'BITRIX_UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL_ERROR', 'SOMETHING_NEW', 'INTERNAL_ERROR',
    undefined, 'INTERNAL_ERROR', undefined, 'QUEUE_TIMEOUT', undefined
  ])
})

t.test('scripts match by path and token, first match wins', async tt => {
  const sim = await started(tt)
  sim.script(
    { token: 'b', status: 502 },
    { path: '/v1/elsewhere', status: 200 },
    { path: EVENT, code: 'BITRIX_ERROR' },
    { token: 'b', status: 504 }
  )
  tt.equal((await call(sim, log('a', 'x'))).status, 200, 'token a matches nothing')
  tt.equal((await call(sim, { path: '/v1/other' })).status, 404, 'default scripts only touch workflow paths')
  tt.equal((await call(sim, { path: '/v1/elsewhere' })).status, 200)
  tt.equal((await call(sim, { path: EVENT, body: { eventToken: 'a' } })).status, 422)
  tt.equal((await call(sim, log('b', 'x'))).status, 502)
  tt.equal((await call(sim, log('b', 'x'))).status, 504)
  tt.equal((await call(sim, log('b', 'x'))).status, 200)
  tt.equal((await call(sim, { raw: 'garbage' })).status, 400, 'a body without a token is fine')
  tt.same(sim.entries('b'), ['x'])
})

t.test('scripted drops', async tt => {
  const sim = await started(tt)
  sim.script({ drop: 'before' }, { drop: 'after' }, { drop: 'after', headers: { 'x-api-key': 'ignored' } })
  await tt.rejects(call(sim, log('tok', 'one')), { code: 'UND_ERR_SOCKET' })
  tt.same(sim.entries('tok'), [], 'dropped before: not recorded')
  await tt.rejects(call(sim, log('tok', 'two')), { code: 'UND_ERR_SOCKET' })
  tt.same(sim.entries('tok'), ['two'], 'dropped after: recorded although the client saw an error')
  // drop after a request that fails validation: nothing lands either way
  await tt.rejects(call(sim, log('tok', ' ')), { code: 'UND_ERR_SOCKET' })
  tt.equal((await call(sim, log('tok', 'two'))).status, 200)
  tt.same(sim.entries('tok'), ['two', 'two'], 'the retry writes a duplicate')
  tt.same(sim.requests.map(r => [r.status, r.code]), [
    [0, 'DROPPED_BEFORE'], [0, 'DROPPED_AFTER'], [0, 'DROPPED_AFTER'], [200, undefined]
  ])
  tt.same(sim.stats().byCode, { DROPPED_BEFORE: 1, DROPPED_AFTER: 2, OK: 1 })
})

t.test('scripted delay, and latency on every answer', async tt => {
  const sim = await started(tt, { latency: 30 })
  sim.script({ delay: 60 })
  let start = Date.now()
  tt.equal((await call(sim)).status, 200)
  tt.ok(Date.now() - start >= 85, 'delay adds to latency')
  start = Date.now()
  tt.equal((await call(sim, { headers: { 'x-api-key': null } })).status, 401)
  tt.ok(Date.now() - start >= 25, 'errors are delayed too')
  tt.same(sim.entries('tok'), ['hello'])

  // A client that gives up mid-delay: the entry still lands (the decision is
  // made on arrival), and nothing is written to the dead socket afterwards.
  sim.script({ delay: 200 })
  const controller = new AbortController()
  const pending = call(sim, { ...log('tok', 'slow'), signal: controller.signal })
  await until(() => sim.requests.length === 3)
  controller.abort()
  await tt.rejects(pending)
  tt.same(sim.entries('tok'), ['hello', 'slow'])
  await new Promise(resolve => setTimeout(resolve, 250))
  tt.equal((await call(sim)).status, 200)
})

t.test('scripted stall holds the request until close', async tt => {
  const sim = await Simulator.start()
  sim.script({ stall: true })
  const pending = call(sim)
  pending.catch(() => {})
  await until(() => sim.requests.length === 1)
  tt.same([sim.requests[0].status, sim.requests[0].code], [0, 'STALLED'])
  tt.equal((await call(sim)).status, 200, 'other requests are answered meanwhile')
  const start = Date.now()
  await sim.close()
  tt.ok(Date.now() - start < 1000, 'close does not wait for the stalled request')
  await tt.rejects(pending)
  tt.same(sim.entries('tok'), ['hello'])
})

t.test('stall mode holds everything until close', async tt => {
  const sim = await Simulator.start()
  sim.script({ status: 502 })
  sim.stall(true)
  const first = call(sim)
  first.catch(() => {})
  const second = call(sim, { path: '/nowhere' })
  second.catch(() => {})
  await until(() => sim.requests.length === 2)
  sim.stall(false)
  tt.equal((await call(sim)).status, 502, 'the script was not consumed while stalled')
  tt.equal((await call(sim)).status, 200)
  tt.same(sim.stats().byCode, { STALLED: 2, BITRIX_UNAVAILABLE: 1, OK: 1 })
  await sim.close()
  await tt.rejects(first)
  await tt.rejects(second)
  tt.same(sim.entries('tok'), ['hello'])
})

async function faultCodes (opts: SimulatorOptions, n: number): Promise<Array<string | undefined>> {
  const sim = await Simulator.start(opts)
  try {
    for (let i = 0; i < n; i++) await call(sim, log('tok', `line ${i}`)).catch(() => {})
    return sim.requests.map(r => r.code)
  } finally {
    await sim.close()
  }
}

t.test('random faults are deterministic by seed', async tt => {
  const faults = { status502Rate: 0.2, dropBeforeRate: 0.2, dropAfterRate: 0.2, seed: 42 }
  const a = await faultCodes({ faults }, 30)
  const b = await faultCodes({ faults }, 30)
  tt.same(a, b)
  for (const code of ['BITRIX_UNAVAILABLE', 'DROPPED_BEFORE', 'DROPPED_AFTER', undefined]) tt.ok(a.includes(code), String(code))
  const c = await faultCodes({ faults: { ...faults, seed: 7 } }, 30)
  tt.not(JSON.stringify(a), JSON.stringify(c), 'another seed, another sequence')

  tt.same(await faultCodes({ faults: { status502Rate: 1 } }, 3), ['BITRIX_UNAVAILABLE', 'BITRIX_UNAVAILABLE', 'BITRIX_UNAVAILABLE'])
  tt.same(await faultCodes({ faults: { dropBeforeRate: 1 } }, 2), ['DROPPED_BEFORE', 'DROPPED_BEFORE'])
})

t.test('random faults only hit requests that passed validation; drop-after lands', async tt => {
  const sim = await started(tt, { faults: { dropAfterRate: 1 } })
  tt.equal((await call(sim, { headers: { 'x-api-key': null } })).status, 401)
  tt.equal((await call(sim, log('tok', ''))).status, 422)
  await tt.rejects(call(sim, log('tok', 'landed')), { code: 'UND_ERR_SOCKET' })
  tt.same(sim.entries('tok'), ['landed'])
})

t.test('concurrency tracking', async tt => {
  const sim = await started(tt, { latency: 80 })
  await Promise.all([
    call(sim, log('a', '1')),
    call(sim, log('a', '2')),
    call(sim, log('a', '3')),
    call(sim, log('b', '1')),
    call(sim, log('b', '2'))
  ])
  tt.equal(sim.stats().maxConcurrent, 5)
  tt.equal(sim.maxConcurrentPerToken(), 3)
  tt.same(sim.entries('a').sort(), ['1', '2', '3'])
  await call(sim, log('a', '4'))
  tt.equal(sim.maxConcurrentPerToken(), 3, 'a maximum, not the current count')
  tt.same(sim.stats(), { requests: 6, byCode: { OK: 6 }, maxConcurrent: 5, rows: 6, rowsErased: 0 })
})

t.test('allEntries returns copies', async tt => {
  const sim = await started(tt)
  await call(sim, log('a', 'x'))
  await call(sim, log('b', 'y'))
  await call(sim, log('a', 'z'))
  const all = sim.allEntries()
  tt.same([...all], [['a', ['x', 'z']], ['b', ['y']]])
  all.get('a')?.push('mutated')
  sim.entries('a').push('mutated')
  tt.same(sim.entries('a'), ['x', 'z'])
})

t.test('reset forgets everything but the configuration', async tt => {
  const faults = { status502Rate: 0.3, seed: 3 }
  const sim = await started(tt, { faults, rateLimit: { rps: 1, burst: 2 }, now: () => 0 })
  const run = async (): Promise<Array<string | undefined>> => {
    for (let i = 0; i < 2; i++) await call(sim, log(`t${i}`, 'x'))
    return sim.requests.map(r => r.code)
  }
  const first = await run()
  await call(sim, { path: EVENT, body: { eventToken: 'done' } })
  sim.killToken('dead')
  sim.script({ status: 500 })
  sim.stall(true)
  const held = call(sim)
  held.catch(() => {})
  await until(() => sim.requests.length === 4)

  sim.reset()
  tt.same(sim.requests, [])
  tt.same(sim.stats(), { requests: 0, byCode: {}, maxConcurrent: 1, rows: 0, rowsErased: 0 }, 'the held request is still in flight')
  tt.equal(sim.maxConcurrentPerToken(), 0)
  tt.same([...sim.allEntries()], [])
  tt.equal(sim.event('done'), undefined)
  tt.same(await run(), first, 'same fault sequence and a fresh rate-limit bucket')
  tt.equal((await call(sim, log('dead', 'alive again'))).status, 429, 'still rate limited: config kept')
  sim.setRateLimit(null)
  tt.equal((await call(sim, log('dead', 'alive again'))).status, 200)
  // seed 3 makes this one a random 502; what matters is that it is not 403
  tt.equal((await call(sim, { path: EVENT, body: { eventToken: 'done' } })).status, 502, 'completed token forgotten')
})
