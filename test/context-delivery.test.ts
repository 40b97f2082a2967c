import t, { type Test } from 'tap'
import pino from 'pino'
import { eventTokenMergeStrategy, eventTokenMixin } from '../lib/context'
import { eventTokenLogMethod } from '../lib/log-method'
import { runActivity } from '../lib/run-activity'
import { createTransport } from '../lib/transport'
import { startSimulator, type Simulator } from '../lib/simulator'
import { API_KEY } from './fixtures/harness'
import { untrackedWorker } from './fixtures/untracked'

// 50 activities at once, each logging 10 lines through the ROOT logger from
// nested async code with seeded random delays, while unrelated code logs
// outside any context. Every line must reach its own workflow, in order,
// the completion last; nothing else reaches any workflow.

const ACTIVITIES = 50
const LINES = 10
// Every fifth activity throws after its lines.
const fails = (a: number) => a % 5 === 4

function prng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let x = Math.imul(s ^ (s >>> 15), 1 | s)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const token = (a: number) => `wf.ctx${String(a).padStart(3, '0')}.c0ffee`

/** A random small wait of one of the kinds real code meets. */
function pause (random: () => number): Promise<void> {
  const kind = Math.floor(random() * 4)
  if (kind === 0) return new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 3)))
  if (kind === 1) return new Promise((resolve) => setImmediate(resolve))
  if (kind === 2) return new Promise((resolve) => process.nextTick(resolve))
  return Promise.resolve().then(() => undefined)
}

/** The workload; returns how many lines were logged outside any context. */
async function workload (logger: pino.Logger): Promise<number> {
  const random = prng(2024)
  // A "repository" deep in the app: it only knows the root logger.
  const repository = {
    async save (a: number, i: number) {
      await pause(random)
      logger.info({ a, i }, 'saved')
      await pause(random)
    }
  }
  const service = async (a: number) => {
    for (let i = 0; i < LINES; i++) {
      await pause(random)
      await repository.save(a, i)
    }
    if (fails(a)) throw new Error(`activity ${a} failed`)
    return { status: 'ok', activity: a }
  }
  let outside = 0
  const state = { running: true }
  const background = (async () => {
    while (state.running) {
      logger.info({ background: outside }, 'outside any activity')
      outside++
      await pause(random)
    }
  })()
  const outcomes = await Promise.all(Array.from({ length: ACTIVITIES }, (_, a) =>
    runActivity(logger, token(a), () => service(a), { onError: (err) => ({ status: 'failed', reason: (err as Error).message }) })))
  state.running = false
  await background
  logger.info('after all activities')
  for (const [a, o] of outcomes.entries()) if (o.ok === fails(a)) throw new Error(`activity ${a}: unexpected outcome`)
  return outside + 1
}

function check (t: Test, sim: Simulator) {
  const all = sim.allEntries()
  t.same([...all.keys()].sort(), Array.from({ length: ACTIVITIES }, (_, a) => token(a)), 'only the activities\' workflows got entries')
  let crossed = 0
  let misordered = 0
  for (let a = 0; a < ACTIVITIES; a++) {
    const entries = sim.entries(token(a))
    const lines = entries.join('\n').split('\n').map((l) => l.replace(/^\d\d:\d\d:\d\d /, ''))
    const steps = lines.slice(0, -1)
    for (const [i, line] of steps.entries()) {
      if (!line.startsWith(`INFO saved a=${a} `)) crossed++
      else if (line !== `INFO saved a=${a} i=${i}`) misordered++
    }
    t.equal(steps.length, LINES, `activity ${a}: all its lines`)
    t.equal(lines.at(-1), fails(a) ? `ERROR Activity failed err=Error: activity ${a} failed` : 'INFO Activity completed', `activity ${a}: the completion is the last entry`)
    t.same(sim.event(token(a))?.returnValues, fails(a) ? { status: 'failed', reason: `activity ${a} failed` } : { status: 'ok', activity: a })
    t.same(sim.ignored(token(a)), [], 'nothing after the completion')
  }
  t.equal(crossed, 0, 'zero lines crossed between workflows')
  t.equal(misordered, 0, 'every workflow\'s lines in order')
  // Each workflow's lines wait for its completion, which carries them: one request per activity.
  t.equal(sim.requests.length, ACTIVITIES, 'one event per activity, carrying its lines')
}

for (const [setup, options] of [
  ['the mixin', { mixin: eventTokenMixin, mixinMergeStrategy: eventTokenMergeStrategy }],
  ['the log-method hook', { hooks: { logMethod: eventTokenLogMethod } }]
] as const) {
  t.test(`in-process: pino(await build()) with ${setup}, 50 concurrent activities`, async (t) => {
    const sim = await startSimulator()
    t.teardown(() => sim.close())
    const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, flushInterval: 60000 })
    const logger = pino(options, stream)
    const outside = await workload(logger)
    await new Promise<void>((resolve) => logger.flush(() => resolve()))
    check(t, sim)
    t.match(stream.stats, { received: outside + ACTIVITIES * (LINES + 1), skipped: outside, delivered: ACTIVITIES * (LINES + 1), completions: ACTIVITIES })
    t.equal(Object.values(stream.stats.dropped).reduce((sum, n) => sum + n, 0), 0, 'nothing dropped')
    stream.end()
    await new Promise((resolve) => stream.once('close', resolve))
  })
}

t.test('in a worker: pino.transport by package name, the mixin alone (pino\'s default merge strategy)', async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const transport = pino.transport({
    target: 'pino-bitrix24-workflow',
    options: { apiKey: API_KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, flushInterval: 60000 },
    worker: untrackedWorker()
  })
  let stats: Record<string, unknown> | undefined
  transport.on('bitrix24:stats', (s: Record<string, unknown>) => { stats = s })
  const logger = pino({ mixin: eventTokenMixin }, transport)
  const outside = await workload(logger)
  await new Promise((resolve) => logger.flush(resolve))
  check(t, sim)
  const closed = new Promise<void>((resolve) => transport.once('close', () => resolve()))
  transport.end()
  await closed
  t.match(stats, { skipped: outside, delivered: ACTIVITIES * (LINES + 1), completions: ACTIVITIES })
  t.equal(Object.values(stats?.dropped as Record<string, number>).reduce((sum, n) => sum + n, 0), 0, 'nothing dropped')
})
