import t, { type Test } from 'tap'
import pino from 'pino'
import FakeTimers from '@sinonjs/fake-timers'
import { startSimulator, type Simulator } from '../lib/simulator'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeApp, runApp } from './fixtures/app'
import { API_KEY, waitFor } from './fixtures/harness'
import { untrackedWorker } from './fixtures/untracked'

// Through pino.transport by package name, in a real worker thread: pino
// resolves 'pino-bitrix24-workflow' from this file the way it would from an
// application (the package refers to itself through its `exports`). The worker starts
// as an app's would, without the test runner's loaders (untrackedWorker).

type Transport = ReturnType<typeof pino.transport>

// Two tests at a time: each has its own worker and simulator, and mostly waits on the worker's
// start-up. Each flushes before end() blocks this thread (see finish), so a block holds up
// nobody's answer for long, its own or the other test's.
t.jobs = 2

async function setup (t: Test, options: Record<string, unknown> = {}, sim?: Simulator) {
  const server = sim ?? await startSimulator()
  const transport: Transport = pino.transport({
    target: 'pino-bitrix24-workflow',
    options: { apiKey: API_KEY, baseUrl: server.url, maxRequestsPerSecond: 0, ...options },
    worker: untrackedWorker()
  })
  t.teardown(() => server.close())
  return { sim: server, transport }
}

// thread-stream's end() blocks this thread until the worker has closed, and the
// simulator answers from this very thread: flush first (asynchronously), so that
// the worker has nothing left to wait for when end() blocks.
async function finish (transport: Transport): Promise<void> {
  await new Promise((resolve) => transport.flush(resolve))
  const closed = new Promise<void>((resolve) => transport.once('close', () => resolve()))
  transport.end()
  await closed
}

t.test('interleaved lines of three tokens arrive per token, in order, in one entry each', async (t) => {
  const { sim, transport } = await setup(t, { flushInterval: 60000 })
  const logger = pino(transport)
  const tokens = ['wf.one.aaaaaaaaaa', 'wf.two.bbbbbbbbbb', 'wf.three.cccccccc']
  for (let i = 0; i < 20; i++) for (const token of tokens) logger.child({ eventToken: token }).info({ i }, 'step')
  logger.info('no token')
  transport.write('this is not json\n')
  await finish(transport)
  for (const token of tokens) {
    const entries = sim.entries(token)
    t.equal(entries.length, 1, 'as few entries as the limits allow')
    t.same(entries[0]?.split('\n').map((l) => l.replace(/^\d\d:\d\d:\d\d /, '')), Array.from({ length: 20 }, (_, i) => `INFO step i=${i}`))
  }
  t.equal(sim.requests.length, 3, 'lines without a token and non-JSON lines are skipped')
})

t.test('headers and body exactly as documented; Bearer only when configured', async (t) => {
  const { sim, transport } = await setup(t)
  pino(transport).child({ eventToken: 'wf.hdr' }).info('hello')
  await finish(transport)
  const [req] = sim.requests
  t.equal(req?.method, 'POST')
  t.equal(req?.path, '/v1/workflows/activity-log')
  t.equal(req?.headers['x-api-key'], API_KEY)
  t.equal(req?.headers['content-type'], 'application/json')
  t.match(req?.headers['user-agent'], /^pino-bitrix24-workflow\/\d+\.\d+\.\d+$/)
  t.equal(req?.headers.authorization, undefined, 'no Authorization without a session token')
  t.same(Object.keys(req?.body as object), ['eventToken', 'logMessage'])
  t.match(req?.body, { eventToken: 'wf.hdr', logMessage: /^\d\d:\d\d:\d\d INFO hello$/ })

  const app = await setup(t, { apiKey: 'vibe_app_test_key', sessionToken: 'session_test_token' })
  pino(app.transport).child({ eventToken: 'wf.app' }).info('as an app')
  await finish(app.transport)
  t.equal(app.sim.requests[0]?.headers.authorization, 'Bearer session_test_token')
  t.same(app.sim.entries('wf.app').length, 1)
})

t.test('logger.flush(cb) calls back after delivery', async (t) => {
  const { sim, transport } = await setup(t, { flushInterval: 60000 }, await startSimulator({ latency: 50 }))
  const logger = pino(transport)
  logger.child({ eventToken: 'wf.flush' }).info('must be written before the activity completes')
  await new Promise<void>((resolve, reject) => logger.flush((err) => err ? reject(err) : resolve()))
  t.equal(sim.entries('wf.flush').length, 1, 'in the log when flush calls back')
  // The by-hand pattern: flush, then complete the activity with one's own call.
  logger.child({ eventToken: 'wf.flush' }).info('Done')
  await new Promise((resolve) => logger.flush(resolve))
  const res = await fetch(`${sim.url}/v1/workflows/event`, {
    method: 'POST',
    headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ eventToken: 'wf.flush', returnValues: { ok: true } })
  })
  t.equal(res.status, 200)
  t.match(sim.entries('wf.flush'), [/must be written/, /Done$/], 'every line landed before the event')
  await finish(transport)
})

t.test('completion through the stream: the event carries the earlier lines; later lines never sent', async (t) => {
  const { sim, transport } = await setup(t)
  const log = pino(transport).child({ eventToken: 'wf.complete' })
  log.info('Import started')
  log.info({ rows: 120 }, 'Rows parsed')
  log.info({ workflowEvent: { returnValues: { status: 'ok', rows: 120 } } }, 'Import finished')
  log.info('too late')
  const drop = new Promise((resolve) => transport.once('bitrix24:drop', resolve))
  await finish(transport)
  t.match(await drop, { reason: 'completed', lines: 1 })
  t.same(sim.requests.map((r) => r.path), ['/v1/workflows/event'], '3 lines and a completion: 1 request')
  t.match(sim.event('wf.complete'), { returnValues: { status: 'ok', rows: 120 }, logMessage: /INFO Import started\n.*INFO Rows parsed rows=120\n.*INFO Import finished$/ })
  t.same(sim.ignored('wf.complete'), [], 'nothing was sent after the event')
})

t.test('under targets, completing through the stream has no gap: every earlier line lands before the event', async (t) => {
  // logger.flush(cb) does not wait for delivery under targets (a pino
  // limitation); a completing line needs no flush: the transport orders it.
  const sim = await startSimulator({ latency: 20 })
  t.teardown(() => sim.close())
  const dir = makeApp(t)
  const transport: Transport = pino.transport({
    targets: [
      { target: 'pino/file', options: { destination: join(dir, 'out.log') } },
      { target: 'pino-bitrix24-workflow', options: { apiKey: API_KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, flushInterval: 60000 } }
    ],
    worker: untrackedWorker()
  })
  const completed = new Promise<unknown>((resolve) => transport.once('bitrix24:completed', resolve))
  const log = pino(transport).child({ eventToken: 'wf.targets.complete' })
  for (let i = 0; i < 10; i++) log.info({ i }, 'step')
  log.info({ workflowEvent: { returnValues: { status: 'ok' } } }, 'Import finished')
  // The simulator answers from this thread: wait until the worker has its answer
  // before end() blocks the thread (waiting only for the request to arrive left
  // the answer behind the block, and close waited closeTimeout for it).
  t.same(await completed, { token: 'wf.targets.complete' }, 'the completion is confirmed')
  const closed = new Promise<void>((resolve) => transport.once('close', () => resolve()))
  transport.end()
  await closed
  t.same(sim.requests.map((r) => r.path), ['/v1/workflows/event'], 'the event carries the lines: one request')
  t.same(sim.entries('wf.targets.complete')[0]?.split('\n').map((l) => l.replace(/^\d\d:\d\d:\d\d /, '')), [...Array.from({ length: 10 }, (_, i) => `INFO step i=${i}`), 'INFO Import finished'])
  t.match(sim.event('wf.targets.complete'), { returnValues: { status: 'ok' }, logMessage: /INFO Import finished$/ })
  t.same(sim.ignored('wf.targets.complete'), [], 'nothing arrived after the event')
})

t.test('custom levels, messageKey and errorKey of the logger are honoured', async (t) => {
  const { sim, transport } = await setup(t, { level: 'notice' })
  const logger = pino({ customLevels: { notice: 35 }, messageKey: 'message', errorKey: 'error' }, transport)
  const log = logger.child({ eventToken: 'wf.custom' })
  log.info('below the minimum level')
  log.notice('a custom level')
  log.error({ error: new RangeError('out of range') }, 'failed')
  await finish(transport)
  t.match(sim.entries('wf.custom'), [/^\d\d:\d\d:\d\d NOTICE a custom level\n\d\d:\d\d:\d\d ERROR failed error=RangeError: out of range$/])
})

t.test('the level option works when the logger writes levels as labels', async (t) => {
  const { sim, transport } = await setup(t, { level: 'warn' })
  const logger = pino({ formatters: { level: (label) => ({ level: label }) } }, transport)
  const log = logger.child({ eventToken: 'wf.labels' })
  log.info('below the minimum level')
  log.warn('shown')
  log.error('shown too')
  await finish(transport)
  t.match(sim.entries('wf.labels'), [/^\d\d:\d\d:\d\d WARN shown\n\d\d:\d\d:\d\d ERROR shown too$/])
})

t.test('unixTime, isoTime and epochTime lines show the time of day in the timeZone asked for', async (t) => {
  const { sim, transport } = await setup(t, { timeZone: 'Asia/Tokyo', messageFormat: '{time} {msg}' })
  // pino's own time functions, on a clock stopped at 23:30:05.4 UTC (08:30:05 in Tokyo).
  const clock = FakeTimers.install({ now: Date.UTC(2025, 0, 15, 23, 30, 5, 400), toFake: ['Date'] })
  const { unixTime, isoTime, epochTime } = pino.stdTimeFunctions
  for (const [name, timestamp] of Object.entries({ unixTime, isoTime, epochTime })) {
    pino({ timestamp }, transport).child({ eventToken: `wf.time.${name}` }).info(name)
  }
  clock.uninstall()
  await finish(transport)
  for (const name of ['unixTime', 'isoTime', 'epochTime']) t.same(sim.entries(`wf.time.${name}`), [`08:30:05 ${name}`], name)
})

t.test('events reach the main thread', async (t) => {
  const { sim, transport } = await setup(t)
  sim.script({ status: 401, code: 'INVALID_API_KEY' })
  const seen: string[] = []
  for (const name of ['bitrix24:authError', 'bitrix24:drop', 'bitrix24:stats']) transport.on(name, () => seen.push(name))
  pino(transport).child({ eventToken: 'wf.events' }).info('x')
  await finish(transport)
  await waitFor(() => seen.includes('bitrix24:stats'), 'the stats event')
  t.ok(seen.includes('bitrix24:authError'))
  t.ok(seen.includes('bitrix24:drop'))
})

t.test('a misconfiguration never takes the app or its other targets down', async (t) => {
  const dir = makeApp(t)
  const cases = [
    { name: 'no key', options: {}, message: /^pino-bitrix24-workflow: ERR_BITRIX24_MISSING_API_KEY: no API key: set env BITRIX24_API_KEY or option "apiKey"; transport disabled, the app and its other targets go on\n$/ },
    { name: 'an invalid option', options: { apiKey: API_KEY, flushInterval: -1 }, message: /ERR_BITRIX24_INVALID_OPTION: option "flushInterval" must be an integer from 0 to 3600000, got -1; transport disabled/ },
    { name: 'an insecure URL', options: { apiKey: API_KEY, baseUrl: 'http://user:pw@vibecode.example.com' }, message: /ERR_BITRIX24_INSECURE_BASE_URL: option "baseUrl" must use https:/ }
  ]
  // The three apps at once, each with its own output file.
  const runs = await Promise.all(cases.map((c, i) => {
    const out = join(dir, `out-${i}.log`)
    return runApp(dir, 'targets.js', { OUT_FILE: out, TRANSPORT_OPTIONS: JSON.stringify(c.options) }).then((run) => ({ run, out }))
  }))
  for (const [i, { name, message }] of cases.entries()) {
    const { run, out } = runs[i] as { run: Awaited<ReturnType<typeof runApp>>, out: string }
    t.equal(run.code, 0, `${name}: the app exits 0`)
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l).msg)
    t.same(lines, ['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'a line without a token'], `${name}: the other target got every line`)
    t.equal(run.stderr.split('\n').length, 2, `${name}: one stderr line`)
    t.match(run.stderr, message, `${name}: code, option, what to do`)
    t.notOk(run.stderr.includes(API_KEY) || run.stderr.includes(':pw@'), `${name}: no secret`)
  }
})

t.test('a mistyped option through pino.transport: one stderr line naming the option meant, and delivery goes on', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const dir = makeApp(t)
  const run = await runApp(dir, 'log.js', {
    BITRIX24_API_KEY: API_KEY,
    TRANSPORT_OPTIONS: JSON.stringify({ baseUrl: sim.url, maxRequestsPerSecond: 0, flushIntervall: 100 }),
    LINES: '3'
  })
  t.equal(run.code, 0)
  const lines = run.stderr.trim().split('\n')
  t.equal(lines.length, 1, run.stderr)
  t.match(lines[0], /^pino-bitrix24-workflow: ERR_BITRIX24_UNKNOWN_OPTION .*"flushIntervall" \(did you mean "flushInterval"\?\)$/)
  t.equal(sim.requests.filter((r) => r.status === 200).length > 0, true, 'the other options apply: lines are delivered')
})
