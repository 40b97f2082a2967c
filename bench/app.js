'use strict'

// The measured application: one run of one scenario, in a process of its own
// (forked by bench/run.js, which passes the scenario as JSON in argv[2] and
// gets the result over IPC). It logs through pino.transport with the target
// named as a user would name it; the package resolves itself by name through
// its package.json "exports" (self-reference), so pino loads dist/index.js in
// its worker exactly as it would from node_modules.

const fs = require('node:fs')
const path = require('node:path')
const { once } = require('node:events')
const pino = require('pino')
const { orderStep, STEPS, timeInfo } = require('./lib/timing')

const scenario = JSON.parse(process.argv[2])

// pino unrefs its worker once it is ready, and thread-stream waits for the
// worker with Atomics.waitAsync, which holds no handle: an app awaiting
// 'drain' with nothing else alive would simply exit. A server would keep a
// real app alive; this timer does here. The process exits once it reports.
setInterval(() => {}, 1000)

/** Event tokens shaped like Bitrix24's (`xxx.yyy.zzz`), deterministic. */
function makeTokens (n) {
  const tokens = []
  for (let i = 0; i < n; i++) {
    const id = String(i).padStart(6, '0')
    tokens.push(`wf${id}.${(0x5a3c1e + i * 7919).toString(16)}.${(0x9f1d2b7c + i * 104729).toString(16)}`)
  }
  return tokens
}

/** What pino.transport is given for each variant. */
function targetOf (variant, urls, options) {
  switch (variant) {
    case 'floor':
      return { target: path.join(__dirname, 'fixtures', 'floor.js'), options: {} }
    case 'file':
      return { target: 'pino/file', options: { destination: '/dev/null' } }
    case 'bitrix24':
      return {
        target: 'pino-bitrix24-workflow',
        options: { apiKey: 'vibe_api_test_key', baseUrl: urls.sim, ...options }
      }
    case 'baseline':
      // bench/run.js --baseline=DIR: the transport as built in another checkout, for before/after runs.
      return {
        target: path.join(scenario.baseline, 'dist', 'index.js'),
        options: { apiKey: 'vibe_api_test_key', baseUrl: urls.sim, ...options }
      }
    case 'loki':
      return { target: 'pino-loki', options: { host: urls.sink, ...options } }
    case 'axiom':
      return { target: '@axiomhq/pino', options: { dataset: 'bench', token: 'xaat-bench-token', edgeUrl: urls.sink, ...options } }
    default:
      throw new Error(`unknown variant ${variant}`)
  }
}

function peakRssBytes () {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8')
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)
    if (m !== null) return Number(m[1]) * 1024
  } catch {}
  return null
}

/**
 * CPU ms of each thread of this process (Linux), into `into` (tid → kind and
 * ms): the main thread, pino's worker, V8's background threads (compilers,
 * concurrent GC), libuv's pool. A thread that ends keeps the value it had at
 * its last read: sampled often, the worker's last few ms at most are missed.
 * For bench/profile.js: where a window's process CPU went.
 */
function readThreadCpu (into) {
  let tids
  try {
    tids = fs.readdirSync('/proc/self/task')
  } catch {
    return into
  }
  for (const tid of tids) {
    let stat
    try {
      stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    } catch {
      continue
    }
    const close = stat.lastIndexOf(')')
    const fields = stat.slice(close + 2).split(' ')
    const kind = tid === String(process.pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, close)
    // utime and stime, in USER_HZ ticks (100 a second on Linux).
    into.set(tid, { kind, ms: (Number(fields[11]) + Number(fields[12])) * 10 })
  }
  return into
}

/**
 * CPU ms per thread between two reads of readThreadCpu, busiest first, as
 * `main`, then `<name> 1`, `<name> 2`... (Node names pino's worker and V8's
 * threads alike: the worker is the busiest after main).
 */
function threadCpuDelta (before, after) {
  const list = [...after].map(([tid, { kind, ms }]) => ({ kind, ms: ms - (before.get(tid)?.ms ?? 0) })).sort((a, b) => b.ms - a.ms)
  const out = {}
  const seen = {}
  for (const { kind, ms } of list) {
    if (kind === 'main') out.main = ms
    else {
      seen[kind] = (seen[kind] ?? 0) + 1
      out[`${kind} ${seen[kind]}`] = ms
    }
  }
  return out
}

/** Bytes this process caused to be written to storage (Linux), for §11's bytes per line. */
function ioWriteBytes () {
  try {
    const m = /^write_bytes:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/io', 'utf8'))
    if (m !== null) return Number(m[1])
  } catch {}
  return NaN
}

function waitForMessage (type) {
  return new Promise((resolve) => {
    process.on('message', function onMessage (msg) {
      if (msg && msg.type === type) {
        process.off('message', onMessage)
        resolve(msg)
      }
    })
  })
}

async function start () {
  const { target, options } = targetOf(scenario.variant, scenario.urls, scenario.options)
  const transport = pino.transport({ target, options })
  const result = { stats: null, statsBeforeClose: null }
  transport.on('bitrix24:stats', (s) => { result.stats = s })
  const closed = once(transport, 'close')
  // A worker that dies must fail the run, not hang it.
  transport.on('error', (err) => {
    process.send({ type: 'error', error: String(err && err.stack) }, () => process.exit(1))
  })
  // The logger first: pino sends its config to the worker when the logger is
  // made, and a transport that expects it (expectPinoConfig) is ready only then.
  const logger = pino({}, transport)
  await once(transport, 'ready')
  return { transport, logger, closed, result }
}

/** Ends the transport and waits for the worker to have closed. */
async function finish (transport, closed, result) {
  transport.end()
  await closed
  result.statsBeforeClose = result.stats !== null
  // The stats event travels as a message from the worker; give a late one a chance.
  if (result.stats === null) await new Promise((resolve) => setTimeout(resolve, 200))
}

/**
 * Logs `count` lines, `tokenShare` of them carrying one of the `tokens`
 * round robin. Waits for 'drain' when pino's buffer to the worker is
 * full, as an application with backpressure would; `perTick` lines every
 * `tickMs` when a steady rate is asked for.
 */
async function logLines (logger, transport, tokens, { count, tokenShare = 1, perTick = 0, tickMs = 0, msgBytes = 0 }) {
  const every = Math.round(1 / tokenShare)
  const msg = 'order step finished'.padEnd(msgBytes, ' lorem ipsum dolor sit amet')
  let k = 0
  for (let i = 0; i < count; i++) {
    const obj = { orderId: 100000 + i, step: STEPS[i % STEPS.length], durationMs: i % 997 }
    if (i % every === 0) {
      logger.info({ eventToken: tokens[k % tokens.length], ...obj }, msg)
      k++
    } else {
      logger.info(obj, msg)
    }
    if (perTick > 0 && i % perTick === perTick - 1) {
      await new Promise((resolve) => setTimeout(resolve, tickMs))
    } else if ((i & 63) === 63 && transport.writableNeedDrain) {
      await once(transport, 'drain')
    }
  }
  return k
}

const modes = {
  /** Lines per CPU-second and wall time, first line to worker closed. */
  async throughput () {
    const { transport, logger, closed, result } = await start()
    const tokens = makeTokens(scenario.tokens)
    const rssAtReady = process.memoryUsage().rss
    let maxRss = rssAtReady
    const threads0 = readThreadCpu(new Map())
    const threads = new Map(threads0)
    const sampler = setInterval(() => {
      maxRss = Math.max(maxRss, process.memoryUsage().rss)
      readThreadCpu(threads)
    }, 20)
    const cpu0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    const tokenLines = await logLines(logger, transport, tokens, scenario)
    const tLogged = process.hrtime.bigint()
    await finish(transport, closed, result)
    const t1 = process.hrtime.bigint()
    const cpu = process.cpuUsage(cpu0)
    clearInterval(sampler)
    return {
      ...result,
      threadCpuMs: threadCpuDelta(threads0, readThreadCpu(threads)),
      lines: scenario.count,
      tokenLines,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs: Number(t1 - t0) / 1e6,
      // On the clock of V8's CPU profiles (µs), for bench/profile.js.
      windowUs: [Number(t0 / 1000n), Number(t1 / 1000n)],
      loggedMs: Number(tLogged - t0) / 1e6,
      rssAtReady,
      maxRssSampled: maxRss,
      peakRss: peakRssBytes(),
      ioWriteBytes: ioWriteBytes()
    }
  },

  /** p50/p99 of one logger.info call in the application thread. */
  async latency () {
    const { transport, logger, closed, result } = await start()
    const tokens = makeTokens(scenario.tokens)
    const timed = await timeInfo(logger, transport, scenario, (i) => orderStep(i, tokens[i % tokens.length]))
    await finish(transport, closed, result)
    return { ...result, ...timed }
  },

  /**
   * Workflows logging at a steady rate: every `intervalMs`, one line per
   * token, `steps` times; each line carries its log time (t=…) so that the
   * server can tell how long it waited. Then the app returns (transport.end(),
   * as pino does at exit), or, with `serveOn`, goes on serving until run.js
   * has seen everything delivered.
   */
  async workflows () {
    const { transport, logger, closed, result } = await start()
    const children = makeTokens(scenario.tokens).map((eventToken) => logger.child({ eventToken }))
    const t0 = Date.now()
    for (let step = 0; step < scenario.steps; step++) {
      for (const child of children) child.info('step %d t=%d', step, Date.now())
      await new Promise((resolve) => setTimeout(resolve, scenario.intervalMs))
    }
    // Each workflow completes, and the app exits at once (the close has closeTimeout for every completion).
    if (scenario.complete) for (const child of children) child.info({ workflowEvent: { returnValues: { ok: true } } }, 'done t=%d', Date.now())
    const tLogged = Date.now()
    if (scenario.serveOn) {
      const finishAsked = waitForMessage('finish')
      process.send({ type: 'logged', t0 })
      await finishAsked
    }
    await finish(transport, closed, result)
    return { ...result, lines: scenario.steps * scenario.tokens, t0, tLogged, closedMs: Date.now() - tLogged }
  },

  /** Logs one line per token, then waits for run.js to see everything delivered. */
  async rate () {
    const { transport, logger, closed, result } = await start()
    // Several processes of one bench run log for tokens of their own.
    const offset = scenario.tokenOffset ?? 0
    const tokens = makeTokens(offset + scenario.count).slice(offset)
    const finishAsked = waitForMessage('finish')
    const t0 = Date.now()
    for (let i = 0; i < scenario.count; i++) {
      logger.info({ eventToken: tokens[i], step: 'started' }, 'workflow step started')
    }
    process.send({ type: 'logged', t0 })
    await finishAsked
    await finish(transport, closed, result)
    return { ...result, lines: scenario.count, t0 }
  }
}

modes[scenario.mode]().then((result) => {
  process.send({ type: 'result', result }, () => process.exit(0))
}, (err) => {
  process.send({ type: 'error', error: String(err && err.stack) }, () => process.exit(1))
})
