import t from 'tap'
import type { Test } from 'tap'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { classify, ERR_DESTROYED, ERR_SERIALIZE } from '../lib/classify'
import { Client, ERR_DEADLINE, MAX_ANSWER_BYTES, notSent, USER_AGENT } from '../lib/client'
import type { ClientOptions } from '../lib/client'
import { startSimulator } from '../lib/simulator'
import type { Simulator } from '../lib/simulator'
import { version } from '../package.json'
import { Delivery } from '../lib/delivery'
import { parseOptions } from '../lib/options'
import { Reporter } from '../lib/reporter'
import { createStats } from '../lib/stats'
import { fakeClock, waitFor } from './fixtures/harness'
import { repeatedRetryAfter } from './fixtures/repeated-header'

const KEY = 'vibe_api_test_key'
const APP_KEY = 'vibe_app_test_key'
const SESSION = 'session_test_token'
const LOG = '/v1/workflows/activity-log'
const SUCCESS_BODY = JSON.stringify({ success: true, data: null })

async function simulator (t: Test, opts?: Parameters<typeof startSimulator>[0]): Promise<Simulator> {
  const sim = await startSimulator(opts)
  t.teardown(() => sim.close())
  return sim
}

function client (t: Test, opts: Partial<ClientOptions> & { baseUrl: string }): Client {
  const c = new Client({ apiKey: KEY, sessionToken: undefined, requestTimeout: 10000, connections: 4, ...opts })
  t.teardown(() => c.destroy())
  return c
}

// Resolves once the simulator has recorded `n` requests: the request has
// reached the server, whatever the server then does with it.
async function received (sim: Simulator, n: number): Promise<void> {
  while (sim.requests.length < n) await new Promise((resolve) => setImmediate(resolve))
}

t.test('USER_AGENT names the package and its version', async (t) => {
  t.match(version, /^\d+\.\d+\.\d+/)
  t.equal(USER_AGENT, `pino-bitrix24-workflow/${version}`)
})

t.test('a request: path, method, body and headers exactly as documented', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  const outcome = await c.post(LOG, { eventToken: 'tok_1', logMessage: 'Строки: 120 ✓' })
  t.same(outcome, { status: 200, body: SUCCESS_BODY, retryAfter: undefined })
  t.same(sim.entries('tok_1'), ['Строки: 120 ✓'])
  t.equal(sim.requests.length, 1)
  const req = sim.requests[0]!
  t.equal(req.method, 'POST')
  t.equal(req.path, LOG)
  t.same(req.body, { eventToken: 'tok_1', logMessage: 'Строки: 120 ✓' })
  t.equal(req.headers['x-api-key'], KEY)
  t.equal(req.headers['content-type'], 'application/json')
  t.equal(req.headers['user-agent'], `pino-bitrix24-workflow/${version}`)
  t.notOk('authorization' in req.headers, 'no Authorization without a session token')
  t.equal(req.headers['content-length'], String(Buffer.byteLength(JSON.stringify({ eventToken: 'tok_1', logMessage: 'Строки: 120 ✓' }))))
})

t.test('Authorization: Bearer only when a session token is configured', async (t) => {
  const sim = await simulator(t)
  const withSession = client(t, { baseUrl: sim.url, apiKey: APP_KEY, sessionToken: SESSION })
  t.same(await withSession.post(LOG, { eventToken: 'tok', logMessage: 'app' }), { status: 200, body: SUCCESS_BODY, retryAfter: undefined })
  t.equal(sim.requests[0]?.headers.authorization, `Bearer ${SESSION}`)
  t.equal(sim.requests[0]?.headers['x-api-key'], APP_KEY)

  const without = client(t, { baseUrl: sim.url, apiKey: APP_KEY })
  const outcome = await without.post(LOG, { eventToken: 'tok', logMessage: 'app' })
  t.match(outcome, { status: 401, retryAfter: undefined })
  t.match(JSON.parse((outcome as { body: string }).body), { success: false, error: { code: 'INVALID_APP_KEY' } }, 'the server sees an app key without a session')
  t.notOk('authorization' in sim.requests[1]!.headers)
})

t.test('a base URL with a path prefix', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url + '/vibe/api' })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  t.equal(sim.requests[0]?.path, '/vibe/api' + LOG, 'the prefix comes before the path')
  t.match(outcome, { status: 404 }, 'the simulator has no such route: answered, not failed')
})

t.test('a base URL with a bare slash adds no prefix', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url + '/' })
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { status: 200 })
  t.equal(sim.requests[0]?.path, LOG)
})

t.test('an error answer is an outcome with its status and body', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  sim.script({ code: 'BITRIX_ACCESS_DENIED', message: 'token used' })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  t.match(outcome, { status: 403, retryAfter: undefined })
  t.same(JSON.parse((outcome as { body: string }).body), { success: false, error: { code: 'BITRIX_ACCESS_DENIED', message: 'token used' } })
  sim.script({ status: 502, body: '<html>Bad Gateway</html>' })
  t.same(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { status: 502, body: '<html>Bad Gateway</html>', retryAfter: undefined },
    'a body that is not JSON is passed on as text')
})

t.test('the Retry-After header is passed through', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  sim.script({ code: 'RATE_LIMITED', retryAfter: 2, headers: { 'Retry-After': '2' } })
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { status: 429, retryAfter: '2' })
  const date = 'Wed, 21 Oct 2037 07:28:00 GMT'
  sim.script({ code: 'QUEUE_TIMEOUT', headers: { 'retry-after': date } })
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { status: 504, retryAfter: date }, 'an HTTP date as given')
  sim.script({ code: 'QUEUE_TIMEOUT', retryAfter: 5 })
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { status: 504, retryAfter: undefined }, 'retryAfter in the body is not a header')
})

t.test('the simulator\'s own rate limit answers with Retry-After', async (t) => {
  const sim = await simulator(t, { rateLimit: { rps: 1, burst: 1 } })
  const c = client(t, { baseUrl: sim.url })
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'a' }), { status: 200 })
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'b' }), { status: 429, retryAfter: '1' })
})

t.test('a repeated Retry-After header: the first one counts', async (t) => {
  // The simulator sends each header once; a plain server sends two.
  const c = client(t, { baseUrl: await repeatedRetryAfter(t) })
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { status: 429, retryAfter: '3' })
})

t.test('connection refused: an error, not sent', async (t) => {
  const sim = await startSimulator()
  const url = sim.url
  await sim.close()
  const c = client(t, { baseUrl: url })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  t.match(outcome, { error: { code: 'ECONNREFUSED' }, sent: false })
  t.type((outcome as { error: { message?: string } }).error.message, 'string')
})

t.test('a connection dropped after the request was processed: sent', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  sim.script({ drop: 'after' })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'landed' })
  t.match(outcome, { error: { code: String }, sent: true })
  t.notOk('status' in outcome, 'no status')
  t.same(sim.entries('tok'), ['landed'], 'the entry did land: a retry would write it twice')
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'next' }), { status: 200 }, 'the client recovers on a new connection')
})

t.test('a connection dropped before an answer: possibly sent', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  sim.script({ drop: 'before' })
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { error: { code: String }, sent: true },
    'the client cannot tell whether the server acted')
  t.same(sim.entries('tok'), [])
})

t.test('a stalled server with a short requestTimeout: ambiguous', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url, requestTimeout: 200 })
  sim.stall(true)
  const started = Date.now()
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  t.match(outcome, { error: { code: ERR_DEADLINE }, sent: true })
  t.ok(Date.now() - started >= 150, 'after about requestTimeout')
  t.equal(sim.requests.length, 1, 'the request reached the server')
})

t.test('destroy() aborts a request in flight', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  sim.stall(true)
  const pending = c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  await received(sim, 1)
  await c.destroy()
  const outcome = await pending
  t.match(outcome, { error: { code: ERR_DESTROYED }, sent: true })
})

t.test('requests after destroy() fail without being sent', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  await c.destroy()
  // Nothing left this machine, though the outcome says `sent: true`: the code is the one
  // a request aborted in flight gets, and only connection-level codes count as not sent
  // (see NOT_SENT in lib/client.ts). After destroy() nothing is retried anyway.
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { error: { code: ERR_DESTROYED } })
  t.equal(sim.requests.length, 0)
})

t.test('connections caps the requests in flight', async (t) => {
  const sim = await simulator(t, { latency: 30 })
  const c = client(t, { baseUrl: sim.url, connections: 2 })
  const outcomes = await Promise.all([1, 2, 3, 4, 5].map((i) => c.post(LOG, { eventToken: `tok${i}`, logMessage: 'x' })))
  for (const o of outcomes) t.match(o, { status: 200 })
  t.ok(sim.stats().maxConcurrent <= 2, `at most 2 at once (saw ${sim.stats().maxConcurrent})`)
})

t.test('sequential requests reuse the connection', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url, connections: 1 })
  for (let i = 0; i < 5; i++) t.match(await c.post(LOG, { eventToken: 'tok', logMessage: `m${i}` }), { status: 200 })
  t.same(sim.entries('tok'), ['m0', 'm1', 'm2', 'm3', 'm4'])
})

t.test('a key HTTP cannot carry in a header: refused before sending', async (t) => {
  const sim = await simulator(t)
  // Passes option validation (no control characters): a zero-width space pasted with the key.
  const c = client(t, { baseUrl: sim.url, apiKey: KEY + '\u200b' })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  t.match(outcome, { error: { code: 'ERR_INVALID_CHAR' }, sent: false })
  t.notMatch(JSON.stringify(outcome), KEY, 'the key is not in the error')
  t.equal(sim.requests.length, 0, 'nothing reached the server')
})

t.test('a payload JSON cannot carry is refused before sending', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 10n })
  t.match(outcome, { error: { code: ERR_SERIALIZE, name: 'TypeError', message: String }, sent: false })
  t.equal(sim.requests.length, 0)
})

// A loopback server of the test's own: `handler` answers every request, once its body is read.
async function server (t: Test, handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string, requests: () => number }> {
  let requests = 0
  const srv = http.createServer((req, res) => {
    requests++
    req.resume()
    req.on('end', () => handler(req, res))
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  t.teardown(() => {
    srv.closeAllConnections()
    srv.close()
  })
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, requests: () => requests }
}

t.test('a 200 whose body trickles a byte every 300 ms: cut at requestTimeout and judged by its status', async (t) => {
  const timers: NodeJS.Timeout[] = []
  let bytes = 0
  const { url, requests } = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{')
    // Each byte restarts undici's bodyTimeout: only an overall deadline ends this.
    const timer = setInterval(() => {
      bytes++
      res.write(' ')
    }, 300)
    timers.push(timer)
    res.on('close', () => clearInterval(timer))
  })
  t.teardown(() => { for (const timer of timers) clearInterval(timer) })
  const c = client(t, { baseUrl: url, requestTimeout: 1000 })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  // The status had arrived: the outcome is the 200, with what came of the body.
  t.match(outcome, { status: 200, body: /^\{ */ })
  t.equal(classify(outcome, 0).action, 'ok')
  t.equal(requests(), 1, 'one request, not retried by the client')
  t.ok(bytes >= 1, `the server trickled past headersTimeout and bodyTimeout (${bytes} bytes)`)
  t.ok(bytes < 10, 'and the request ended near its deadline, not when the server stopped')
})

t.test('a huge answer body is not read whole: at most MAX_ANSWER_BYTES, then the socket is let go', async (t) => {
  const chunk = Buffer.alloc(64 * 1024, 'x')
  let written = 0
  let closed = false
  const { url } = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"success":true,"data":"')
    // An endless body: it only stops when the client goes away.
    const pump = (): void => {
      while (written < 512 * 1024 * 1024) {
        if (closed) return
        written += chunk.length
        if (!res.write(chunk)) {
          res.once('drain', pump)
          return
        }
      }
    }
    res.on('close', () => { closed = true })
    pump()
  })
  const c = client(t, { baseUrl: url })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  t.match(outcome, { status: 200 })
  t.equal((outcome as { body: string }).body.length, MAX_ANSWER_BYTES, 'the body is cut at the cap')
  await waitFor(() => closed, 'the connection to close')
  t.ok(written < 64 * 1024 * 1024, `the server could write only what socket buffers hold (${written} bytes), not 512 MB`)
  t.match(classify(outcome, Date.now()), { action: 'ok', code: 'OK' }, 'a 200 with a huge body is a success, never a retry')
})

t.test('a cut error body is classified by its status', async (t) => {
  const { url } = await server(t, (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' })
    res.end(`{"success":false,"error":{"code":"RATE_LIMITED","hint":"${'h'.repeat(MAX_ANSWER_BYTES)}"}}`)
  })
  const c = client(t, { baseUrl: url })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  t.match(classify(outcome, Date.now()), { action: 'retry', code: 'HTTP_503' })
})

t.test('a body just under the cap is read whole, and the connection is reused', async (t) => {
  const answer = JSON.stringify({ success: true, data: 'y'.repeat(MAX_ANSWER_BYTES - 40) })
  const { url } = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(answer)
  })
  const c = client(t, { baseUrl: url, connections: 1 })
  t.same(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { status: 200, body: answer, retryAfter: undefined })
})

t.test('a payload that cannot be serialised is a local failure: not sent, nothing on the wire', async (t) => {
  const sim = await simulator(t)
  const c = client(t, { baseUrl: sim.url })
  let deep: Record<string, unknown> = {}
  for (let i = 0; i < 100_000; i++) deep = { a: deep }
  const outcome = await c.post(LOG, { eventToken: 'tok', returnValues: deep })
  t.match(outcome, { error: { code: ERR_SERIALIZE, name: 'RangeError' }, sent: false })
  t.equal(sim.requests.length, 0)
  t.match(classify(outcome, Date.now()), { action: 'rejected', ambiguous: false, advice: /serialised/ }, 'dropped, not retried')
})

async function tlsServer (t: Test): Promise<{ url: string, requests: () => number }> {
  const fixtures = join(__dirname, 'fixtures', 'tls')
  let requests = 0
  // A certificate for 127.0.0.1 that no CA signed: test-only, never trusted anywhere.
  const srv = https.createServer({
    key: readFileSync(join(fixtures, 'test-only-key.pem')),
    cert: readFileSync(join(fixtures, 'test-only-cert.pem'))
  }, (_req, res) => {
    requests++
    res.end()
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  t.teardown(() => {
    srv.closeAllConnections()
    srv.close()
  })
  return { url: `https://127.0.0.1:${(srv.address() as AddressInfo).port}`, requests: () => requests }
}

t.test('a self-signed certificate: refused before sending, not a possible duplicate, not retried', async (t) => {
  const { url, requests } = await tlsServer(t)
  const c = client(t, { baseUrl: url })
  const outcome = await c.post(LOG, { eventToken: 'tok', logMessage: 'x' })
  t.match(outcome, { error: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, sent: false })
  t.equal(requests(), 0, 'the request never reached the server')
  t.match(classify(outcome, Date.now()), { action: 'rejected', ambiguous: false, advice: /TLS certificate/ })
})

t.test('through delivery: a TLS failure and an unserialisable completion are dropped once, never retried', async (t) => {
  const { url, requests } = await tlsServer(t)
  const clock = fakeClock()
  const config = parseOptions({ apiKey: KEY, baseUrl: url, maxRequestsPerSecond: 0, flushInterval: 0 }, {})
  const c = client(t, { baseUrl: url })
  const stats = createStats()
  const stderr: string[] = []
  const delivery = new Delivery(config, c, clock, new Reporter((text) => { stderr.push(text) }, clock), () => {}, stats)
  delivery.add('wf.1', 'step')
  let deep: Record<string, unknown> = {}
  for (let i = 0; i < 100_000; i++) deep = { a: deep }
  delivery.complete('wf.2', 'done', deep)
  await clock.runUntil(() => stats.dropped.rejected === 2, 50)
  t.match(stats, { requests: 2, retries: 0, possibleDuplicates: 0 })
  t.equal(requests(), 0)
  t.match(stderr.join(''), /DEPTH_ZERO_SELF_SIGNED_CERT: the server's TLS certificate was not accepted; nothing was sent/)
  t.match(stderr.join(''), /could not be completed \(rejected ERR_BITRIX24_SERIALIZE\)/)
})

t.test('notSent: connection-level codes and TLS failures', async (t) => {
  t.equal(notSent('ECONNREFUSED'), true)
  t.equal(notSent('CERT_HAS_EXPIRED'), true)
  t.equal(notSent('ERR_TLS_CERT_ALTNAME_INVALID'), true)
  t.equal(notSent('ECONNRESET'), false)
  t.equal(notSent(undefined), false)
})

t.test('four trickling answers no longer stop delivery: each ends at its deadline and counts as delivered by its 200', async (t) => {
  const timers: NodeJS.Timeout[] = []
  const { url, requests } = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{')
    const timer = setInterval(() => res.write(' '), 300)
    timers.push(timer)
    res.on('close', () => clearInterval(timer))
  })
  t.teardown(() => { for (const timer of timers) clearInterval(timer) })
  const clock = fakeClock()
  const config = parseOptions({ apiKey: KEY, baseUrl: url, maxRequestsPerSecond: 0, requestTimeout: 1000, concurrency: 4, maxRetries: 1, flushInterval: 0 }, {})
  const c = client(t, { baseUrl: url, requestTimeout: 1000 })
  const stats = createStats()
  const stderr: string[] = []
  const delivery = new Delivery(config, c, clock, new Reporter((text) => { stderr.push(text) }, clock), () => {}, stats)
  for (const token of ['wf.1', 'wf.2', 'wf.3', 'wf.4']) delivery.add(token, 'step')
  await clock.runUntil(() => stats.delivered === 4, 50, 100_000)
  t.match(stats, { requests: 4, retries: 0, possibleDuplicates: 0, delivered: 4, entries: 4 }, 'every request ended, none was sent again')
  t.equal(requests(), 4, 'the server saw each request once')
  t.same(stderr, [])
})

t.test('a 200 cut by a reset after the status line is judged by its status: every entry delivered once, nothing sent twice', async (t) => {
  const sim = await simulator(t)
  const direct = client(t, { baseUrl: sim.url })
  sim.script({ drop: 'body' }, { status: 500, drop: 'body' })
  t.match(await direct.post(LOG, { eventToken: 'wf.direct', logMessage: 'x' }), { status: 200 }, 'the status, not a socket error')
  t.match(classify(await direct.post(LOG, { eventToken: 'wf.direct', logMessage: 'y' }), 0), { action: 'retry', status: 500, ambiguous: false }, 'a cut 500 is a 500')
  sim.reset()
  const clock = fakeClock()
  const config = parseOptions({ apiKey: KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, concurrency: 4, flushInterval: 0 }, {})
  const c = client(t, { baseUrl: sim.url })
  const stats = createStats()
  const stderr: string[] = []
  const delivery = new Delivery(config, c, clock, new Reporter((text) => { stderr.push(text) }, clock), () => {}, stats)
  const tokens = Array.from({ length: 20 }, (_, i) => `wf.cut.${i}`)
  sim.script(...tokens.map(() => ({ drop: 'body' as const })))
  for (const token of tokens.slice(0, 10)) delivery.add(token, 'step')
  for (const token of tokens.slice(10)) delivery.complete(token, 'done', { ok: true })
  await clock.runUntil(() => stats.delivered === 20, 50, 100_000)
  await delivery.close()
  t.match(stats, { delivered: 20, entries: 10, completions: 10, requests: 20, retries: 0, possibleDuplicates: 0 })
  t.equal(Object.values(stats.dropped).reduce((a, b) => a + b, 0), 0, 'nothing dropped')
  t.equal(sim.stats().byCode.CUT_BODY, 20, 'every answer was cut')
  t.equal(sim.requests.length, 20, 'nothing sent twice')
  t.same(stderr, [], 'nothing to tell')
})
