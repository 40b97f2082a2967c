'use strict'

// Where the CPU goes: runs one scenario of the bench under `node --cpu-prof`
// (the app's main thread and pino's worker each write a profile) and prints
// the top self-time functions per thread and the self time per module, for
// the measured window only (first line to worker closed, as in bench/run.js):
// start-up and module loading are left out.
//
//   node bench/profile.js [throughput|tokenless|memory] [--variant=bitrix24|floor|file|loki|axiom]
//                         [--lines=N] [--top=N] [--dir=DIR] [--threads=RUNS]
//
// --threads=RUNS: no profiler; the scenario runs RUNS times and the window's CPU
// is split by thread (Linux): the main thread, pino's worker, V8's background
// threads (TurboFan, concurrent GC), libuv's pool; medians of the runs.
//
// Build first (npm run build). Profiles stay in --dir (default: a temp dir)
// for Chrome DevTools or speedscope.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Server, runApp } = require('./lib/children')

const ROOT = path.join(__dirname, '..')

function parseArgs (argv) {
  const opts = { scenario: 'throughput', variant: 'bitrix24', lines: undefined, top: 15, dir: undefined, threads: 0 }
  for (const arg of argv) {
    if (arg.startsWith('--variant=')) opts.variant = arg.slice(10)
    else if (arg.startsWith('--lines=')) opts.lines = Number(arg.slice(8))
    else if (arg.startsWith('--top=')) opts.top = Number(arg.slice(6))
    else if (arg.startsWith('--dir=')) opts.dir = path.resolve(arg.slice(6))
    else if (arg.startsWith('--threads=')) opts.threads = Number(arg.slice(10))
    else if (!arg.startsWith('-')) opts.scenario = arg
    else {
      console.error(`profile: unknown argument ${arg}`)
      process.exit(2)
    }
  }
  if (!['throughput', 'tokenless', 'memory'].includes(opts.scenario)) {
    console.error(`profile: unknown scenario ${opts.scenario}`)
    process.exit(2)
  }
  return opts
}

/** A readable place for a frame: our dist/ files, a package in node_modules, or node's own. */
function where (url) {
  if (url === '') return ''
  let file = url.startsWith('file://') ? url.slice(7) : url
  const nm = file.lastIndexOf('/node_modules/')
  if (nm !== -1) return file.slice(nm + 14)
  if (file.startsWith(ROOT + '/')) file = file.slice(ROOT.length + 1)
  return file
}

/** The module a frame belongs to, for the per-module breakdown. */
function moduleOf (callFrame) {
  const url = where(callFrame.url)
  if (url === '') return callFrame.functionName.startsWith('(') ? callFrame.functionName : '(native / V8 builtins)'
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').split('/').slice(0, 2).join('/')
  if (url.startsWith('dist/') || url.startsWith('bench/')) return url
  const parts = url.split('/')
  return parts[0].startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

/** Self time per profile node, counting only samples inside [from, to] (µs). */
function summarize (file, top, [from, to]) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]
    if (at < from || at > to) continue
    const dt = profile.timeDeltas[i + 1] ?? 0
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt)
  }
  const fns = new Map()
  const mods = new Map()
  let total = 0
  let idle = 0
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id)
    if (callFrame.functionName === '(idle)') {
      idle += us
      continue
    }
    total += us
    const key = `${callFrame.functionName || '(anonymous)'}  ${where(callFrame.url)}${callFrame.url ? ':' + (callFrame.lineNumber + 1) : ''}`
    fns.set(key, (fns.get(key) ?? 0) + us)
    const mod = moduleOf(callFrame)
    mods.set(mod, (mods.get(mod) ?? 0) + us)
  }
  const rows = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, us]) => `  ${(us / 1000).toFixed(1).padStart(8)} ms ${(us * 100 / total).toFixed(1).padStart(5)} %  ${k}`)
  return { total, idle, functions: rows(fns, top), modules: rows(mods, 12) }
}

/** The window's CPU by kind of thread, median of the runs, and the whole process's. */
function printThreads (opts, count, runs) {
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  }
  const kinds = [...new Set(runs.flatMap((r) => Object.keys(r.threadCpuMs)))]
  const rows = kinds.map((kind) => [kind, median(runs.map((r) => r.threadCpuMs[kind] ?? 0))]).sort((a, b) => b[1] - a[1])
  console.log(`${opts.scenario}, ${opts.variant}, ${count.toLocaleString('en-US')} lines, ${runs.length} runs: ${median(runs.map((r) => r.cpuMs)).toFixed(0)} ms CPU (whole process, median), by thread (median, 10 ms ticks):`)
  for (const [kind, ms] of rows) console.log(`  ${String(ms.toFixed(0)).padStart(6)} ms  ${kind}`)
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    console.error('profile: dist/ is missing; run npm run build first')
    process.exit(1)
  }
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-profile-'))
  fs.mkdirSync(dir, { recursive: true })
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.cpuprofile')) fs.rmSync(path.join(dir, f))

  const count = opts.lines ?? (opts.scenario === 'memory' ? 1000000 : 100000)
  const options = opts.variant !== 'bitrix24'
    ? (opts.variant === 'loki' ? { batching: { interval: 5, maxBufferSize: 0 } } : {})
    : opts.scenario === 'memory' ? { closeTimeout: 1000 } : { maxRequestsPerSecond: 0 }
  const server = await Server.start()
  const scenario = {
    mode: 'throughput',
    variant: opts.variant,
    urls: server.urls,
    options,
    count,
    tokens: 50,
    tokenShare: opts.scenario === 'tokenless' ? 0.1 : 1
  }
  let result
  try {
    if (opts.scenario === 'memory') await server.call('stall', true)
    if (opts.threads > 0) {
      const runs = []
      for (let i = 0; i < opts.threads; i++) runs.push(await runApp(scenario, { timeoutMs: 300000 }))
      printThreads(opts, count, runs)
      return
    }
    result = await runApp(scenario, { timeoutMs: 300000, execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
  } finally {
    await server.close()
  }
  console.log(`${opts.scenario}, ${opts.variant}, ${count.toLocaleString('en-US')} lines: ${result.cpuMs.toFixed(0)} ms CPU (whole process, profiler on), ${result.wallMs.toFixed(0)} ms wall`)
  // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the app's main thread.
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()
  for (const f of files) {
    const tid = f.split('.')[4]
    const s = summarize(path.join(dir, f), opts.top, result.windowUs)
    console.log(`\n${tid === '0' ? 'main thread' : `worker thread ${tid}`}: ${(s.total / 1000).toFixed(0)} ms busy, ${(s.idle / 1000).toFixed(0)} ms idle between the first line and the worker closed (${path.join(dir, f)})`)
    console.log(' top self time:')
    console.log(s.functions.join('\n'))
    console.log(' self time by module:')
    console.log(s.modules.join('\n'))
  }
  console.log('\nNotes: the profiler samples a thread even while it is blocked, so "end" (thread-stream) on the main' +
    '\nthread is the app waiting in Atomics.wait for the worker to close: wall time, not CPU. V8\'s background' +
    '\nthreads (TurboFan compiles, concurrent GC) are not in these profiles but are in process.cpuUsage();' +
    '\n`perf record -k CLOCK_MONOTONIC` on the app process shows them.')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
