import t, { type Test } from 'tap'
import pino from 'pino'
import type { Options } from '../lib/options'
import { systemClock } from '../lib/clock'
import { LocalBudget } from '../lib/request-budget'
import { createTransport, type Internals } from '../lib/transport'
import { MAX_LINE_LENGTH } from '../lib/line-splitter'
import { EventEmitter } from 'node:events'
import FakeTimers from '@sinonjs/fake-timers'
import { API_KEY, waitFor } from './fixtures/harness'
import { startSimulator } from '../lib/simulator'
import type { Stats } from '../lib/stats'

async function setup (t: Test, options: Record<string, unknown> = {}) {
  const sim = await startSimulator()
  const stderr: string[] = []
  const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, ...options }, {
    stderr: (line) => { stderr.push(line) }
  })
  t.teardown(() => sim.close())
  return { sim, stream, stderr }
}

t.test('in-process: pino(await build(options)), flush, close', async (t) => {
  const { sim, stream, stderr } = await setup(t)
  const logger = pino(stream)
  const log = logger.child({ eventToken: 'wf.in.process' })
  log.info('Import started')
  log.info({ rows: 120 }, 'Rows parsed')
  logger.info('no token')
  await new Promise<void>((resolve) => logger.flush(() => resolve()))
  t.equal(sim.entries('wf.in.process').length, 1, 'delivered by the time flush calls back')
  t.match(sim.entries('wf.in.process')[0], /^\d\d:\d\d:\d\d INFO Import started\n\d\d:\d\d:\d\d INFO Rows parsed rows=120$/)
  t.match(stream.stats, { received: 3, skipped: 1, delivered: 2 })
  const statsEvent = new Promise((resolve) => stream.once('bitrix24:stats', resolve))
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.match(await statsEvent, { delivered: 2 })
  t.same(stderr, [])
})

t.test('close delivers what is still pending', async (t) => {
  const { sim, stream } = await setup(t, { flushInterval: 60000 })
  const logger = pino(stream)
  logger.child({ eventToken: 'wf.pending' }).warn('last words')
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.match(sim.entries('wf.pending'), [/WARN last words$/])
})

t.test('events are plain stream events in-process', async (t) => {
  const { sim, stream } = await setup(t)
  sim.killToken('wf.dead')
  const drop = new Promise((resolve) => stream.once('bitrix24:drop', resolve))
  pino(stream).child({ eventToken: 'wf.dead' }).info('x')
  stream.flush()
  t.match(await drop, { reason: 'deadToken', lines: 1, token: 'wf.dead' }, 'the full token: events go to the app')
  stream.end()
})

t.test('lines read elsewhere (the pipe mode): taken whole, and one too long raises the drop event', async (t) => {
  const { sim, stream } = await setup(t)
  const drops: unknown[] = []
  stream.on('bitrix24:drop', (event) => { drops.push(event) })
  stream.line(JSON.stringify({ level: 30, time: 0, eventToken: 'wf.piped', msg: 'one\ntwo' }))
  stream.lineTooLong()
  const statsEvent = new Promise<Stats>((resolve) => stream.once('bitrix24:stats', resolve))
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.equal(sim.entries('wf.piped').length, 1, 'one line, one entry: not split again')
  t.match(await statsEvent, { received: 2, delivered: 1, dropped: { lineTooLong: 1 } })
  t.same(drops, [{ reason: 'lineTooLong', lines: 1, token: '', code: undefined }], 'the drop event, like every other reason')
})

t.test('written to the stream: text without a newline is not held past MAX_LINE_LENGTH, and is counted', async (t) => {
  const { sim, stream } = await setup(t)
  const chunk = 'x'.repeat(1024 * 1024)
  for (let i = 0; i <= MAX_LINE_LENGTH / chunk.length; i++) stream.write(chunk)
  stream.write('\n' + JSON.stringify({ level: 30, time: 0, eventToken: 'wf.after', msg: 'the next line' }) + '\n')
  const statsEvent = new Promise<Stats>((resolve) => stream.once('bitrix24:stats', resolve))
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.match(await statsEvent, { received: 2, delivered: 1, dropped: { lineTooLong: 1 } })
  t.equal(sim.entries('wf.after').length, 1, 'the lines after it go on')
})

t.test('the level option uses the logger\'s levels; an unknown one fails at start', async (t) => {
  const { sim, stream } = await setup(t, { level: 'warn' })
  const log = pino(stream).child({ eventToken: 'wf.lvl' })
  log.info('hidden')
  log.error('shown')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  t.match(sim.entries('wf.lvl'), [/ERROR shown$/])
  stream.end()
  await t.rejects(createTransport({ apiKey: API_KEY, level: 'loud' }), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'level', message: /option "level" must be a level of the logger, got "loud"/ })
  // Described like every other value: cut, never echoed whole.
  const err = await createTransport({ apiKey: API_KEY, level: 'l'.repeat(100_000) }).then(() => undefined, (e: Error) => e)
  t.match(err, { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'level', message: /got "l{60}…"$/ })
})

t.test('invalid options reject before anything starts', async (t) => {
  await t.rejects(createTransport({ apiKey: API_KEY, concurrency: 0 }), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'concurrency' })
  await t.rejects(createTransport({}, { env: {} }), { code: 'ERR_BITRIX24_MISSING_API_KEY' })
  await t.rejects(createTransport({ apiKey: API_KEY, baseUrl: 'http://example.com' }), { code: 'ERR_BITRIX24_INSECURE_BASE_URL' })
})

t.test('flush without a callback, and before anything was written', async (t) => {
  const { sim, stream } = await setup(t)
  stream.flush()
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  t.equal(sim.requests.length, 0, 'calls back, having sent nothing')
  t.match(stream.stats, { received: 0, delivered: 0 })
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
})

t.test('malformed input written straight to the stream never breaks it', async (t) => {
  const { sim, stream } = await setup(t)
  stream.write('garbage\n{"eventToken":\n\u0000\u0001\n[1,2]\n42\nnull\n')
  stream.write('{"level":30,"eventToken":"wf.ok","msg":"still fine"}\n')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  t.match(sim.entries('wf.ok'), [/INFO still fine$/])
  await waitFor(() => stream.stats.received === 7, 'all lines counted')
  stream.end()
})

t.test('the defaults of the replaceable parts are the real ones', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, flushInterval: 10 })
  pino(stream).child({ eventToken: 'wf.real.clock' }).info('on the system clock')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  t.equal(sim.entries('wf.real.clock').length, 1)
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
})

// In pino's worker (here: the `worker` flag that start data would set) an
// invalid configuration must not reject: that would crash the application.
async function disabled (t: Test, options: unknown, env: NodeJS.ProcessEnv | null = {}) {
  const stderr: string[] = []
  const stream = await createTransport(options as Options, { worker: true, env: env ?? undefined, stderr: (line) => { stderr.push(line) } })
  const stats = new Promise<Stats>((resolve) => stream.once('bitrix24:stats', resolve))
  const drops: unknown[] = []
  stream.on('bitrix24:drop', (event) => { drops.push(event) })
  const logger = pino(stream)
  logger.child({ eventToken: 'wf.disabled' }).info('never sent')
  logger.info('no token either')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  stream.flush()
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.match(await stats, { received: 2, dropped: { disabled: 2 } }, 'every line is counted as dropped, reason disabled')
  t.match(drops, [{ reason: 'disabled', lines: 1, token: '' }, { reason: 'disabled', lines: 1, token: '' }], 'and raises the drop event')
  return stderr
}

t.test('in the worker, invalid options disable the transport: one stderr line, lines discarded', async (t) => {
  const missing = await disabled(t, {})
  t.equal(missing.length, 1, 'one line')
  t.equal(missing[0], 'pino-bitrix24-workflow: ERR_BITRIX24_MISSING_API_KEY: no API key: set env BITRIX24_API_KEY or option "apiKey"; transport disabled, the app and its other targets go on\n')
  const insecure = await disabled(t, { apiKey: API_KEY, baseUrl: 'http://u:pw@example.com' })
  t.match(insecure, [/^pino-bitrix24-workflow: ERR_BITRIX24_INSECURE_BASE_URL: option "baseUrl" must use https: .*; transport disabled, the app and its other targets go on\n$/])
  t.notOk(insecure[0]?.includes(API_KEY) === true || insecure[0]?.includes('pw') === true, 'no secret')
  t.match(await disabled(t, { apiKey: API_KEY, flushInterval: -1 }), [/ERR_BITRIX24_INVALID_OPTION: option "flushInterval" must be an integer from 0 to 3600000, got -1; transport disabled/])
  t.match(await disabled(t, { apiKey: API_KEY, level: 'loud' }), [/ERR_BITRIX24_INVALID_OPTION: option "level" must be a level of the logger, got "loud"; transport disabled/], 'a level the logger lacks, too')
  t.match(await disabled(t, 'vibe_api_x'), [/option "options" must be an object, got a string of 10 characters; transport disabled/])
})

t.test('a disabled transport honours a plain quiet', async (t) => {
  t.same(await disabled(t, { quiet: true }), [])
  t.same(await disabled(t, {}, { BITRIX24_QUIET: '1' }), [])
  t.same(await disabled(t, {}, { BITRIX24_QUIET: 'true' }), [])
  t.equal((await disabled(t, { quiet: 'yes' })).length, 1, 'quiet itself invalid: the line is written')
  t.equal((await disabled(t, { quiet: false }, { BITRIX24_QUIET: '1' })).length, 1, 'the option wins')
  t.equal((await disabled(t, null)).length, 1)
  t.equal((await disabled(t, { apiKey: API_KEY, flushInterval: -1 }, null)).length, process.env.BITRIX24_QUIET === '1' ? 0 : 1, 'the process environment by default')
})

t.test('quiet: nothing on stderr, events and stats still flow', async (t) => {
  const { sim, stream, stderr } = await setup(t, { quiet: true })
  t.equal(stream.quiet, true, 'resolved once, here: the CLI reads it off the stream')
  sim.killToken('wf.quiet')
  const drop = new Promise((resolve) => stream.once('bitrix24:drop', resolve))
  const stats = new Promise<Stats>((resolve) => stream.once('bitrix24:stats', resolve))
  pino(stream).child({ eventToken: 'wf.quiet' }).info('refused')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.match(await drop, { reason: 'deadToken', lines: 1 })
  t.match(await stats, { dropped: { deadToken: 1 } })
  t.same(stderr, [], 'neither the problem nor the closing summary')
})

t.test('the same problem without quiet is written', async (t) => {
  const { sim, stream, stderr } = await setup(t)
  t.equal(stream.quiet, false)
  sim.killToken('wf.loud')
  pino(stream).child({ eventToken: 'wf.loud' }).info('refused')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.match(stderr.join(''), /BITRIX_ACCESS_DENIED[^]*closed: delivered 0 lines/)
})

t.test('a server that echoes the API key cannot put it on stderr: the transport\'s one redactor takes it out', async (t) => {
  const { sim, stream, stderr } = await setup(t)
  sim.script({ status: 422, code: 'BITRIX_ERROR', message: `refused for key ${API_KEY}`, hint: `check ${API_KEY}` })
  pino(stream).child({ eventToken: 'wf.echo' }).info('refused')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  const text = stderr.join('')
  t.match(text, /server message: refused for key …/, 'the server\'s words are shown, the key cut out')
  t.notOk(text.includes(API_KEY), 'never the key itself')
})

t.test('the request budget can be handed in: delivery spends that one, and closes it', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const budget = new LocalBudget(0, 1, systemClock, 30_000)
  let takes = 0
  let closed = false
  const take = budget.take.bind(budget)
  budget.take = (now) => { takes++; return take(now) }
  budget.close = async () => { closed = true }
  const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, flushInterval: 1 }, { budget })
  pino(stream).child({ eventToken: 'wf.budget' }).info('spent from the budget handed in')
  await waitFor(() => sim.entries('wf.budget').length === 1, 'the entry')
  t.equal(takes, 1)
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.ok(closed)
})

t.test('in the worker, an unknown option name: one stderr line with the nearest option, the rest applies', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const stderr: string[] = []
  const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, flushIntervall: 10, messageFormat: '{msg}' } as Options, {
    worker: true,
    stderr: (line) => { stderr.push(line) }
  })
  t.same(stderr, ['pino-bitrix24-workflow: ERR_BITRIX24_UNKNOWN_OPTION (ignored; the other options apply): unknown option "flushIntervall" (did you mean "flushInterval"?)\n'])
  pino(stream).info({ eventToken: 'wf.unknown' }, 'still delivered')
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.same(sim.entries('wf.unknown'), ['still delivered'])
  await t.rejects(createTransport({ apiKey: API_KEY, flushIntervall: 10 } as Options), { code: 'ERR_BITRIX24_UNKNOWN_OPTION' }, 'in-process build() rejects')
})

t.test('pino\'s configuration: lines that come before it are held, then formatted with it', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const port = new EventEmitter()
  const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, messageFormat: '{level} {msg}', level: 'audit' }, {
    worker: true,
    pinoSendsConfig: true,
    port
  })
  t.equal(port.listenerCount('message'), 1, 'listening for the configuration')
  stream.write(JSON.stringify({ level: 35, message: 'before the config', eventToken: 'wf.held' }) + '\n')
  stream.write(JSON.stringify({ level: 30, message: 'below audit', eventToken: 'wf.held' }) + '\n')
  await new Promise((resolve) => setImmediate(resolve))
  port.emit('message', { code: 'FLUSH' })
  port.emit('message', null)
  t.equal(stream.stats.received, 0, 'held, not yet read')
  port.emit('message', { code: 'PINO_CONFIG', config: { messageKey: 'message', levels: { labels: { 30: 'info', 35: 'audit' }, values: { info: 30, audit: 35 } } } })
  t.equal(port.listenerCount('message'), 0, 'listens no more')
  t.equal(stream.stats.received, 2)
  await new Promise((resolve) => stream.flush(resolve))
  t.same(sim.entries('wf.held'), ['AUDIT before the config'])
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
})

t.test('pino\'s configuration that never comes: defaults after a wait, at flush, at close, or when too much is held', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const clock = FakeTimers.createClock()
  const open = async (extra: Partial<Internals> = {}, options: Options = {}) => await createTransport({ apiKey: API_KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, ...options }, {
    worker: true, pinoSendsConfig: true, port: new EventEmitter(), clock: { now: () => clock.now, setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (h) => clock.clearTimeout(h as number), unref: () => {} }, ...extra
  })
  const line = (token: string): string => JSON.stringify({ level: 30, msg: 'x', eventToken: token }) + '\n'

  const waited = await open()
  waited.write(line('wf.a'))
  waited.write(line('wf.a'))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(waited.stats.received, 0)
  clock.tick(999)
  t.equal(waited.stats.received, 0, 'held for a second')
  clock.tick(1)
  t.equal(waited.stats.received, 2, 'then read with pino\'s defaults')
  waited.end()

  const flushed = await open()
  flushed.write(line('wf.b'))
  await new Promise((resolve) => setImmediate(resolve))
  flushed.flush()
  t.equal(flushed.stats.received, 1, 'flush reads what is held')
  flushed.end()

  const closed = await open()
  closed.end()
  await new Promise((resolve) => closed.once('close', resolve))
  t.equal(closed.stats.received, 0, 'closes without a line or a configuration')

  const full = await open({}, { maxBufferedBytes: 65536 })
  full.write(JSON.stringify({ level: 30, msg: 'y'.repeat(70000), eventToken: 'wf.c' }) + '\n')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(full.stats.received, 1, 'past maxBufferedBytes it waits no more')
  full.end()

  const levelLess = await open({}, { level: 'audit' })
  const stderr: string[] = []
  t.ok(levelLess)
  levelLess.write(line('wf.d'))
  await new Promise((resolve) => setImmediate(resolve))
  clock.tick(1000)
  t.match(levelLess.stats, { received: 1, dropped: { disabled: 1 } }, 'a level the logger turns out to lack disables it, held lines too')
  levelLess.end()
  t.same(stderr, [])

  const noPort = await open({ port: null })
  noPort.write(line('wf.e'))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(noPort.stats.received, 1, 'no port to listen on: no wait')
  noPort.end()
})

t.test('redisUrl without ioredis installed: a coded error in-process, one line in the worker and local pacing', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const options: Options = { apiKey: API_KEY, baseUrl: sim.url, redisUrl: 'redis://:secret@127.0.0.1:1', messageFormat: '{msg}' }
  const installed = (name: string): boolean => name !== 'ioredis'
  await t.rejects(createTransport(options, { installed }), {
    code: 'ERR_BITRIX24_MISSING_PACKAGE',
    option: 'redisUrl',
    message: 'pino-bitrix24-workflow: option "redisUrl" needs the package ioredis: npm install ioredis'
  })
  const stderr: string[] = []
  const stream = await createTransport(options, { installed, worker: true, stderr: (line) => { stderr.push(line) } })
  t.same(stderr, ['pino-bitrix24-workflow: ERR_BITRIX24_MISSING_PACKAGE: option "redisUrl" needs the package ioredis (npm install ioredis); until then each process paces itself\n'])
  pino(stream).info({ eventToken: 'wf.no.redis' }, 'paced locally')
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.same(sim.entries('wf.no.redis'), ['paced locally'])
  // ioredis is a devDependency here: found where it is installed, no error.
  const withIoredis = await createTransport({ ...options, quiet: true })
  withIoredis.end()
  await new Promise((resolve) => withIoredis.once('close', resolve))
})
