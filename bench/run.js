'use strict'

// Runs every benchmark of bench/README.md and prints one markdown report.
//
//   node bench/run.js [--quick] [--write-readme] [--only=throughput,tokenless,economy,memory,latency,rate,context,budget,flood,processes,long,brisk,spool]
//                     [--reps=N] [--parallel] [--json=FILE] [--readme=FILE] [--verbose]
//                     [--variants=floor,bitrix24,...] [--baseline=DIR]
//
// Each run is a child process of its own (bench/app.js) and talks to servers
// in another child (bench/server.js), so that what is measured is the
// application process alone. The machine is shared and noisy: variants that
// are compared run side by side, round after round in rotating order, and
// the report gives medians and per-round ratios.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Server, runApp: spawnApp } = require('./lib/children')
const { contextCost, contextTable, contextTargets } = require('./context')
const { summarize } = require('./lib/timing')
const { processes, processesTable } = require('./lib/shared')
const { longActivities, longTable } = require('./long')
const { brisk } = require('./brisk')
const { spoolCost, spoolTables, spoolTarget } = require('./spool')

const ROOT = path.join(__dirname, '..')
const MARK_START = '<!-- bench:start -->'
const MARK_END = '<!-- bench:end -->'
const SECTIONS = ['throughput', 'tokenless', 'economy', 'memory', 'latency', 'rate', 'context', 'budget', 'flood', 'processes', 'long', 'brisk', 'spool']

// ---------------------------------------------------------------- options

function parseArgs (argv) {
  const flags = { quick: false, writeReadme: false, verbose: false, parallel: false, only: SECTIONS, reps: undefined, json: undefined, variants: undefined, baseline: undefined, readme: path.join(ROOT, 'docs', 'benchmarks.md') }
  for (const arg of argv) {
    if (arg === '--quick') flags.quick = true
    else if (arg === '--write-readme') flags.writeReadme = true
    else if (arg === '--verbose') flags.verbose = true
    else if (arg === '--parallel') flags.parallel = true
    else if (arg.startsWith('--only=')) flags.only = arg.slice(7).split(',').filter(Boolean)
    else if (arg.startsWith('--reps=')) flags.reps = Number(arg.slice(7))
    else if (arg.startsWith('--json=')) flags.json = arg.slice(7)
    else if (arg.startsWith('--variants=')) flags.variants = arg.slice(11).split(',').filter(Boolean)
    else if (arg.startsWith('--baseline=')) flags.baseline = path.resolve(arg.slice(11))
    else if (arg.startsWith('--readme=')) flags.readme = path.resolve(arg.slice(9))
    else if (arg === '--help' || arg === '-h') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 6).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'))
      process.exit(0)
    } else {
      console.error(`bench: unknown argument ${arg} (try --help)`)
      process.exit(2)
    }
  }
  for (const name of flags.only) {
    if (!SECTIONS.includes(name)) {
      console.error(`bench: unknown section ${name}; sections: ${SECTIONS.join(', ')}`)
      process.exit(2)
    }
  }
  if (flags.baseline !== undefined && !fs.existsSync(path.join(flags.baseline, 'dist', 'index.js'))) {
    console.error(`bench: --baseline=${flags.baseline} has no dist/index.js (build that checkout first)`)
    process.exit(2)
  }
  if (flags.reps !== undefined && !(Number.isInteger(flags.reps) && flags.reps >= 1)) {
    console.error('bench: --reps must be a positive integer')
    process.exit(2)
  }
  return flags
}

const flags = parseArgs(process.argv.slice(2))

// The suite's time budget, full run on 2 cores (about 3 minutes in all):
// throughput 5 variants x 5 rounds and tokenless 3 x 5 at 1-2 s a run (~45 s);
// latency 2 x 5 at ~1 s; memory (pino/file and this transport at 250k and 1M
// lines) 3 rounds at ~11 s a round; economy's steady case 5 s once; the
// rate-limited case ~100 s once, last and alone (--parallel runs it beside the
// others instead: it is idle but for two requests a second).
const reps = flags.reps ?? (flags.quick ? 3 : 5)
const plan = {
  reps,
  memoryReps: flags.reps ?? (flags.quick ? 1 : 3),
  lines: 100000,
  tokens: 50,
  latency: { calls: 50000, warmup: 10000, yieldEvery: 100 },
  memory: { counts: [250000, 1000000], closeTimeout: 1000 },
  steady: { count: 5000, perTick: 10, tickMs: 10 },
  rate: { count: flags.quick ? 40 : 200, rps: 2, burst: 5 },
  // A portal's own budget: 2 requests/s drained, a bucket of 50, answers in ~150 ms.
  budget: {
    rps: 2,
    burst: 50,
    latency: 150,
    scenarios: [
      { key: 'return', name: '20 workflows × 4 lines/s × 15 s, then the app returns', tokens: 20, steps: 60, intervalMs: 250, serveOn: false },
      { key: 'serve', name: '100 workflows × 3 lines (one a second), the app serving on', tokens: 100, steps: 3, intervalMs: 1000, serveOn: true },
      // A completion carries its workflow's last lines: finishing costs one request, and at close completions go first.
      { key: 'complete', name: '20 workflows × 20 lines, each completes, the app exits at once (bucket 10, closeTimeout 8000)', tokens: 20, steps: 20, intervalMs: 10, serveOn: false, complete: true, burst: 10, options: { closeTimeout: 8000 } }
    ]
  },
  flood: { tokens: 20, perToken: 20000, msgBytes: 200, closeTimeout: 1000 }
}

// ---------------------------------------------------------------- helpers

function log (text) {
  process.stderr.write(`[bench ${((Date.now() - startedAt) / 1000).toFixed(0).padStart(3)}s] ${text}\n`)
}

function median (values) {
  const list = values.filter((v) => typeof v === 'number' && Number.isFinite(v))
  if (list.length === 0) return NaN
  const sorted = [...list].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function fmtInt (n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—'
}

function fmtNum (n, digits = 2) {
  return Number.isFinite(n) ? n.toFixed(digits) : '—'
}

function fmtMB (bytes) {
  return Number.isFinite(bytes) ? (bytes / 1048576).toFixed(1) + ' MB' : '—'
}

function fmtPct (share) {
  if (!Number.isFinite(share)) return '—'
  if (share === 1) return '100 %'
  return (Math.floor(share * 1000) / 10).toFixed(1) + ' %'
}

function table (head, rows) {
  const lines = ['| ' + head.join(' | ') + ' |', '|' + head.map((h, i) => i === 0 ? ' --- ' : ' ---: ').join('|') + '|']
  for (const row of rows) lines.push('| ' + row.join(' | ') + ' |')
  return lines.join('\n')
}

function version (name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return '?'
  }
}

function machine () {
  let cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))
    if (m !== null) cpu = m[1].trim()
  } catch {}
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length
  return { cpu, cores, node: process.version, platform: `${os.type()} ${os.release()}`, memory: os.totalmem(), load: os.loadavg() }
}

// ---------------------------------------------------------------- children

function runApp (scenario, opts = {}) {
  return spawnApp(scenario, { verbose: flags.verbose, ...opts })
}

function delivered (variant, counts) {
  if (variant === 'bitrix24' || variant === 'baseline') return { lines: counts.sim.lines, requests: counts.sim.requests, sim: counts.sim }
  if (variant === 'loki') return { lines: counts.sink.loki.lines, requests: counts.sink.loki.requests }
  if (variant === 'axiom') return { lines: counts.sink.axiom.lines, requests: counts.sink.axiom.requests }
  return null
}

function failure (err) {
  const tail = err.stderr ? '\n' + err.stderr.trim().split('\n').slice(-8).map((l) => '    ' + l).join('\n') : ''
  log(`FAILED ${err.message.split('\n')[0]}${tail}`)
  return { error: err.message.split('\n')[0] }
}

/** Runs `variants` round after round (rotating order) and collects each run's result. */
async function rounds (server, variants, scenarioOf, reps, what) {
  const runs = Object.fromEntries(variants.map((v) => [v.key, []]))
  for (let r = 0; r < reps; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length])
    for (const v of order) {
      await server.call('reset')
      let result
      try {
        result = await runApp({ ...scenarioOf(v), variant: v.app ?? v.key, urls: server.urls, baseline: flags.baseline })
        result.delivery = delivered(v.app ?? v.key, await server.call('counts'))
      } catch (err) {
        result = failure(err)
      }
      runs[v.key][r] = result
    }
    log(`${what}: round ${r + 1}/${reps} done`)
  }
  return runs
}

// ---------------------------------------------------------------- sections

const loki = version('pino-loki')
const axiom = version('@axiomhq/pino')
const pinoVersion = version('pino')

const VARIANTS = {
  floor: { key: 'floor', label: 'floor: pino-abstract-transport, parse + discard' },
  file: { key: 'file', label: 'pino/file → /dev/null' },
  bitrix24: { key: 'bitrix24', label: '**pino-bitrix24-workflow** → simulator', options: { maxRequestsPerSecond: 0 } },
  // The same transport where no line but the first carries a token: what the skip path costs alone.
  bitrix24Skip: { key: 'bitrix24Skip', app: 'bitrix24', label: 'pino-bitrix24-workflow, only the first line with a token (the skip path alone)', options: { maxRequestsPerSecond: 0 }, tokenShare: 0 },
  // pino-loki's defaults (batching every 5 s, maxBufferSize 10,000) drop the
  // oldest lines of a burst; unbounded batching lets it deliver everything.
  loki: { key: 'loki', label: `pino-loki ${loki} → sink (maxBufferSize 0)`, options: { batching: { interval: 5, maxBufferSize: 0 } } },
  axiom: { key: 'axiom', label: `@axiomhq/pino ${axiom} → sink`, options: {} },
  // --baseline=DIR: the same transport built from another checkout, run in the same rounds (before/after a change).
  baseline: { key: 'baseline', label: `pino-bitrix24-workflow from ${flags.baseline} (baseline) → simulator`, options: { maxRequestsPerSecond: 0 } }
}

/**
 * The variants of a section, less those --variants leaves out (the floor
 * always runs: every ratio is to it), plus the baseline when one is given.
 */
function pick (keys) {
  let list = keys.filter((k) => k === 'floor' || flags.variants === undefined || flags.variants.includes(k))
  if (flags.baseline !== undefined) list = [...list, 'baseline']
  return list.map((k) => VARIANTS[k])
}

function throughputRows (runs, variants, lines) {
  const floorRuns = runs.floor
  return variants.map((v) => {
    const list = runs[v.key]
    const ok = list.filter((r) => r && r.error === undefined)
    const lpcs = ok.map((r) => lines / (r.cpuMs / 1000))
    const ratios = list.map((r, i) => {
      const f = floorRuns[i]
      if (!r || r.error !== undefined || !f || f.error !== undefined) return NaN
      return (f.cpuMs / r.cpuMs)
    })
    const shares = ok.filter((r) => r.delivery !== null).map((r) => r.delivery.lines / ((v.app ?? v.key) === 'bitrix24' || v.key === 'baseline' ? r.tokenLines : lines))
    return {
      variant: v,
      failed: list.length - ok.length,
      errors: list.filter((r) => r && r.error !== undefined).map((r) => r.error),
      lpcs: median(lpcs),
      ratio: median(ratios),
      wallMs: median(ok.map((r) => r.wallMs)),
      cpuMs: median(ok.map((r) => r.cpuMs)),
      share: shares.length === 0 ? null : Math.min(...shares),
      requests: median(ok.filter((r) => r.delivery !== null).map((r) => r.delivery.requests)),
      peakRss: median(ok.map((r) => r.peakRss)),
      stats: ok.map((r) => r.stats),
      runs: list
    }
  })
}

function throughputTable (rows, lines) {
  return table(
    ['target', 'lines / CPU-s', '× floor', 'CPU ms', 'wall ms', 'lines / s (wall)', 'delivered (worst run; of lines with a token)', 'requests'],
    rows.map((row) => [
      row.variant.label + (row.failed > 0 ? ` ⚠ ${row.failed} run(s) failed` : ''),
      fmtInt(row.lpcs),
      fmtNum(row.ratio),
      fmtInt(row.cpuMs),
      fmtInt(row.wallMs),
      fmtInt(lines / (row.wallMs / 1000)),
      row.share === null ? '—' : fmtPct(row.share),
      row.share === null ? '—' : fmtInt(row.requests)
    ])
  )
}

async function throughput (server) {
  const variants = pick(['floor', 'file', 'bitrix24', 'loki', 'axiom'])
  const runs = await rounds(server, variants, (v) => ({ mode: 'throughput', options: v.options, count: plan.lines, tokens: plan.tokens, tokenShare: 1 }), plan.reps, 'throughput')
  return throughputRows(runs, variants, plan.lines)
}

async function tokenless (server) {
  const variants = pick(['floor', 'file', 'bitrix24', 'bitrix24Skip'])
  const runs = await rounds(server, variants, (v) => ({ mode: 'throughput', options: v.options, count: plan.lines, tokens: plan.tokens, tokenShare: v.tokenShare ?? 0.1 }), plan.reps, 'tokenless')
  return throughputRows(runs, variants, plan.lines)
}

async function economy (server, throughputResult) {
  const rows = []
  const fromBurst = throughputResult?.find((row) => row.variant.key === 'bitrix24')
  if (fromBurst) {
    const run = fromBurst.runs.find((r) => r && r.error === undefined)
    if (run) rows.push({ name: `burst: ${fmtInt(plan.lines)} lines as fast as possible (a run of §1)`, lines: plan.lines, durationMs: run.loggedMs, sim: run.delivery.sim, stats: run.stats })
  }
  await server.call('reset')
  const s = plan.steady
  try {
    const run = await runApp({
      mode: 'throughput',
      variant: 'bitrix24',
      urls: server.urls,
      options: { maxRequestsPerSecond: 0 },
      count: s.count,
      tokens: plan.tokens,
      tokenShare: 1,
      perTick: s.perTick,
      tickMs: s.tickMs
    }, { timeoutMs: 60000 })
    const counts = await server.call('counts')
    rows.push({ name: `steady: ${fmtInt(s.count)} lines at ~${fmtInt(s.perTick * 1000 / s.tickMs)} lines/s`, lines: s.count, durationMs: run.loggedMs, sim: counts.sim, stats: run.stats })
  } catch (err) {
    rows.push({ name: 'steady', error: failure(err).error })
  }
  log('economy: done')
  return rows
}

function economyTable (rows) {
  return table(
    ['scenario (50 tokens, defaults, pacing off)', 'logged over', 'requests', 'requests / 1,000 lines', 'entries / token (min · median · max)', 'lines / entry', 'delivered'],
    rows.map((row) => row.error !== undefined
      ? [row.name, '—', '—', '—', '—', '—', 'failed: ' + row.error]
      : [
          row.name,
          fmtNum(row.durationMs / 1000, 1) + ' s',
          fmtInt(row.sim.requests),
          fmtNum(row.sim.requests * 1000 / row.lines, 1),
          row.sim.entriesPerToken === null ? '—' : `${row.sim.entriesPerToken.min} · ${row.sim.entriesPerToken.median} · ${row.sim.entriesPerToken.max}`,
          fmtNum(row.sim.lines / row.sim.entries, 1),
          fmtPct(row.sim.lines / row.lines)
        ])
  )
}

async function memory (server) {
  const runs = []
  for (let r = 0; r < plan.memoryReps; r++) {
    for (const count of plan.memory.counts) {
      // pino/file beside it: what pino, thread-stream and the app's own garbage take at this line count.
      for (const variant of ['file', 'bitrix24']) {
        await server.call('reset')
        await server.call('stall', true)
        let run
        try {
          run = await runApp({
            mode: 'throughput',
            variant,
            urls: server.urls,
            options: variant === 'bitrix24' ? { closeTimeout: plan.memory.closeTimeout } : {},
            count,
            tokens: plan.tokens,
            tokenShare: 1
          }, { timeoutMs: 180000 })
        } catch (err) {
          run = failure(err)
        }
        runs.push({ count, variant, run })
      }
    }
    log(`memory: round ${r + 1}/${plan.memoryReps} done`)
  }
  await server.call('reset')
  const rows = []
  for (const count of plan.memory.counts) {
    for (const variant of ['file', 'bitrix24']) {
      const list = runs.filter((x) => x.count === count && x.variant === variant).map((x) => x.run)
      const ok = list.filter((x) => x.error === undefined)
      const peaks = ok.map((x) => x.peakRss)
      rows.push({
        count,
        variant,
        failed: list.length - ok.length,
        error: ok.length === 0 ? (list[0]?.error ?? 'no run') : undefined,
        peak: median(peaks),
        peakMin: Math.min(...peaks),
        peakMax: Math.max(...peaks),
        rssAtReady: median(ok.map((x) => x.rssAtReady)),
        wallMs: median(ok.map((x) => x.wallMs)),
        // Drop counts are deterministic enough to show the last run's.
        stats: ok.length === 0 ? null : ok[ok.length - 1].stats,
        statsMissing: ok.filter((x) => x.stats === null).length
      })
    }
  }
  return rows
}

function memoryTable (rows) {
  return table(
    ['lines logged', 'target', 'peak RSS (VmHWM), median', 'range', 'above pino/file', 'RSS when ready', 'overflow drops', 'shutdown drops', 'other drops', 'delivered', 'bitrix24:stats', 'wall s'],
    rows.map((row) => {
      const label = row.variant === 'file' ? 'pino/file → /dev/null (baseline)' : `**pino-bitrix24-workflow** → stalled simulator, closeTimeout ${plan.memory.closeTimeout}`
      if (row.error !== undefined) return [fmtInt(row.count), label, 'failed: ' + row.error, '', '', '', '', '', '', '', '', '']
      const range = `${fmtMB(row.peakMin)} – ${fmtMB(row.peakMax)}`
      if (row.variant === 'file') return [fmtInt(row.count), label, fmtMB(row.peak), range, '', fmtMB(row.rssAtReady), '', '', '', '', '', fmtNum(row.wallMs / 1000, 1)]
      const base = rows.find((x) => x.count === row.count && x.variant === 'file')
      const s = row.stats
      const other = s === null ? NaN : Object.entries(s.dropped).filter(([k]) => k !== 'overflow' && k !== 'shutdown').reduce((n, [, v]) => n + v, 0)
      return [
        fmtInt(row.count),
        label + (row.failed > 0 ? ` ⚠ ${row.failed} run(s) failed` : ''),
        fmtMB(row.peak),
        range,
        base && base.error === undefined ? '+' + fmtMB(row.peak - base.peak) : '—',
        fmtMB(row.rssAtReady),
        s === null ? '—' : fmtInt(s.dropped.overflow),
        s === null ? '—' : fmtInt(s.dropped.shutdown),
        fmtInt(other),
        s === null ? '—' : fmtInt(s.delivered),
        row.statsMissing > 0 ? `**missing in ${row.statsMissing} run(s)**` : 'received',
        fmtNum(row.wallMs / 1000, 1)
      ]
    })
  )
}

async function latency (server) {
  const variants = [VARIANTS.file, VARIANTS.bitrix24]
  const runs = await rounds(server, variants, (v) => ({ mode: 'latency', options: v.options, tokens: plan.tokens, ...plan.latency }), plan.reps, 'latency')
  return variants.map((v) => ({ variant: v, ...summarize(runs[v.key], median) }))
}

function latencyTable (rows) {
  const base = rows.find((r) => r.variant.key === 'file')
  const us = (ns) => Number.isFinite(ns) ? (ns / 1000).toFixed(2) : '—'
  return table(
    ['target', 'p50 µs', 'p90 µs', 'p99 µs', 'p99.9 µs', 'p50 × pino/file', 'p99 × pino/file', 'p50 per run (µs)'],
    rows.map((row) => [
      row.variant.label + (row.failed > 0 ? ` ⚠ ${row.failed} run(s) failed` : ''),
      us(row.p50),
      us(row.p90),
      us(row.p99),
      us(row.p999),
      fmtNum(row.p50 / base.p50),
      fmtNum(row.p99 / base.p99),
      row.p50s.map((ns) => (ns / 1000).toFixed(2)).join(' · ')
    ])
  )
}

async function rate () {
  const { count, rps, burst } = plan.rate
  const server = await Server.start({ rateLimit: { rps, burst } })
  const theoretical = (count - burst) / rps * 1000
  const deadline = 2000 + theoretical + 90000
  try {
    let poll
    const run = await runApp({ mode: 'rate', variant: 'bitrix24', urls: server.urls, options: {}, count }, {
      timeoutMs: deadline + 30000,
      onMessage: (msg, child) => {
        if (msg.type !== 'logged') return
        const until = Date.now() + deadline
        poll = setInterval(async () => {
          const counts = await server.call('counts').catch(() => null)
          if (counts === null) return
          if (counts.sim.lines >= count || Date.now() > until) {
            clearInterval(poll)
            child.send({ type: 'finish' })
          }
        }, 250)
      }
    })
    clearInterval(poll)
    const sim = (await server.call('counts')).sim
    log('rate: done')
    return { count, rps, burst, theoretical, run, sim }
  } catch (err) {
    return { count, rps, burst, theoretical, run: failure(err) }
  } finally {
    await server.close()
  }
}

function rateTable (r, flushInterval) {
  if (r.run.error !== undefined) return `Failed: ${r.run.error}`
  const s = r.sim
  const total = s.lastOkAt - r.run.t0
  const fromFirst = s.lastOkAt - s.firstAt
  const minimum = flushInterval + r.theoretical
  return table(
    ['entries (1 line × 1 token each)', 'delivered', 'time to deliver all (first line → last entry)', 'theoretical minimum', 'first request → last entry', 'minimum for that ((N − burst) / rps)', '429s met (simulator)', 'requests', 'transport rateLimited / retries'],
    [[
      fmtInt(r.count),
      fmtPct(s.lines / r.count),
      fmtNum(total / 1000, 1) + ' s',
      fmtNum(minimum / 1000, 1) + ' s',
      fmtNum(fromFirst / 1000, 1) + ' s',
      fmtNum(r.theoretical / 1000, 1) + ' s',
      fmtInt(s.byCode.RATE_LIMITED ?? 0),
      fmtInt(s.requests),
      r.run.stats === null ? 'no stats event' : `${r.run.stats.rateLimited} / ${r.run.stats.retries}`
    ]]
  )
}

async function budgetScenario (sc) {
  const { rps, latency } = plan.budget
  const burst = sc.burst ?? plan.budget.burst
  const server = await Server.start({ rateLimit: { rps, burst }, latency })
  // A completion is a line too.
  const total = sc.tokens * (sc.steps + (sc.complete ? 1 : 0))
  try {
    let poll
    const run = await runApp({ mode: 'workflows', variant: 'bitrix24', urls: server.urls, options: sc.options ?? {}, ...sc }, {
      timeoutMs: 240000,
      onMessage: (msg, child) => {
        if (msg.type !== 'logged') return
        const until = Date.now() + 180000
        poll = setInterval(async () => {
          const counts = await server.call('counts').catch(() => null)
          if (counts === null) return
          if (counts.sim.lines >= total || Date.now() > until) {
            clearInterval(poll)
            child.send({ type: 'finish' })
          }
        }, 250)
      }
    })
    clearInterval(poll)
    const sim = (await server.call('counts')).sim
    const waits = await server.call('latencies')
    log(`budget: ${sc.key} done`)
    return { sc, total, run, sim, waits }
  } catch (err) {
    return { sc, total, run: failure(err) }
  } finally {
    await server.close()
  }
}

async function budget () {
  const rows = []
  for (const sc of plan.budget.scenarios) rows.push(await budgetScenario(sc))
  return rows
}

function budgetTable (rows) {
  return table(
    ['scenario', 'delivered', 'completions delivered', 'entries', 'entries per workflow (max)', 'requests', 'requests / 1,000 lines', 'line → entry p50', 'p95', '429s met', 'app end → closed'],
    rows.map((r) => {
      if (r.run.error !== undefined) return [r.sc.name, 'failed: ' + r.run.error, '', '', '', '', '', '', '', '', '']
      const s = r.sim
      return [
        r.sc.name,
        fmtPct(s.lines / r.total),
        r.sc.complete ? `${s.completions} of ${r.sc.tokens}` : '—',
        fmtInt(s.entries),
        s.entriesPerToken === null ? '—' : fmtInt(s.entriesPerToken.max),
        fmtInt(s.requests),
        fmtNum(s.requests / r.total * 1000, 1),
        r.waits.p50 === null ? '—' : fmtNum(r.waits.p50 / 1000, 1) + ' s',
        r.waits.p95 === null ? '—' : fmtNum(r.waits.p95 / 1000, 1) + ' s',
        fmtInt(s.byCode.RATE_LIMITED ?? 0),
        r.sc.serveOn ? '(served on)' : fmtNum(r.run.closedMs / 1000, 1) + ' s'
      ]
    })
  )
}

/** Peak RSS of this transport and of the parse floor, flooded into a server that never answers. */
async function flood (server) {
  const { tokens, perToken, msgBytes, closeTimeout } = plan.flood
  const variants = ['floor', 'bitrix24', ...(flags.baseline === undefined ? [] : ['baseline'])]
  const runs = Object.fromEntries(variants.map((v) => [v, []]))
  for (let r = 0; r < plan.memoryReps; r++) {
    for (const variant of variants.map((_, i) => variants[(i + r) % variants.length])) {
      await server.call('reset')
      await server.call('stall', true)
      try {
        runs[variant][r] = await runApp({
          mode: 'throughput',
          variant,
          baseline: flags.baseline,
          urls: server.urls,
          options: variant === 'floor' ? {} : { closeTimeout },
          count: tokens * perToken,
          tokens,
          tokenShare: 1,
          msgBytes
        }, { timeoutMs: 240000 })
      } catch (err) {
        runs[variant][r] = failure(err)
      }
    }
    log(`flood: round ${r + 1}/${plan.memoryReps} done`)
  }
  await server.call('stall', false)
  await server.call('reset')
  const peaks = (v) => runs[v].filter((x) => x.error === undefined).map((x) => x.peakRss)
  const last = runs.bitrix24.filter((x) => x.error === undefined).at(-1)
  // Per round, the transport's peak above the floor's of the same round: the two ran side by side.
  const diffsOf = (v) => runs[v].map((x, i) => x.peakRss - runs.floor[i]?.peakRss).filter(Number.isFinite)
  const summary = (v) => {
    const diffs = diffsOf(v)
    return { peak: median(peaks(v)), diff: median(diffs), diffMin: Math.min(...diffs), diffMax: Math.max(...diffs), diffs, over64: diffs.filter((d) => d > 64 * 1048576).length }
  }
  const own = summary('bitrix24')
  return {
    floor: median(peaks('floor')),
    bitrix24: own.peak,
    diff: own.diff,
    diffMin: own.diffMin,
    diffMax: own.diffMax,
    diffs: own.diffs,
    over64: own.over64,
    baseline: flags.baseline === undefined ? undefined : summary('baseline'),
    stats: last?.stats ?? null,
    failed: Object.values(runs).flat().filter((x) => x.error !== undefined).length
  }
}

function floodTable (f) {
  const each = (diffs) => diffs.map((d) => (d / 1048576).toFixed(0)).join(' · ')
  const rows = [
    ['parse floor (pino-abstract-transport, parses only)', fmtMB(f.floor), '', '', '', ''],
    [`**pino-bitrix24-workflow** → stalled simulator, closeTimeout ${plan.flood.closeTimeout}` + (f.stats === null ? '' : ` (overflow drops ${fmtInt(f.stats.dropped.overflow)})`), fmtMB(f.bitrix24), '+' + fmtMB(f.diff), `${fmtMB(f.diffMin)} – ${fmtMB(f.diffMax)}`, String(f.over64), each(f.diffs)]
  ]
  if (f.baseline !== undefined) {
    const b = f.baseline
    rows.push([`pino-bitrix24-workflow from ${flags.baseline} (baseline)`, fmtMB(b.peak), '+' + fmtMB(b.diff), `${fmtMB(b.diffMin)} – ${fmtMB(b.diffMax)}`, String(b.over64), each(b.diffs)])
  }
  return table(['variant', 'peak RSS (VmHWM), median', 'above the floor (median of per-round differences)', 'range of differences', 'rounds over +64 MB', 'each round (MB)'], rows)
}

// ---------------------------------------------------------------- report

function targets (res) {
  const out = []
  const mark = (ok) => ok ? '✅ met' : '❌ missed'
  if (res.throughput) {
    const row = res.throughput.find((r) => r.variant.key === 'bitrix24')
    out.push(['§1 lines / CPU-s ≥ 0.8 × floor', fmtNum(row.ratio) + ' ×', mark(row.ratio >= 0.8)])
    out.push(['§1 100 % delivered', row.share === null ? '—' : fmtPct(row.share), mark(row.share === 1 && row.failed === 0)])
  }
  if (res.tokenless) {
    const row = res.tokenless.find((r) => r.variant.key === 'bitrix24')
    out.push(['§2 90 % tokenless: faster than floor (> 1.0 ×)', fmtNum(row.ratio) + ' ×', mark(row.ratio > 1)])
    const skip = res.tokenless.find((r) => r.variant.key === 'bitrix24Skip')
    if (skip) out.push(['§2 (for the profile) the skip path alone: faster than floor', fmtNum(skip.ratio) + ' ×', mark(skip.ratio > 1)])
  }
  if (res.memory) {
    const ours = res.memory.filter((m) => m.variant === 'bitrix24' && m.error === undefined)
    const big = ours[ours.length - 1]
    const small = ours[0]
    if (big) {
      const base = res.memory.find((m) => m.variant === 'file' && m.count === big.count)
      const note = base && base.error === undefined ? ` (pino/file alone: ${fmtMB(base.peak)}; this transport +${fmtMB(big.peak - base.peak)})` : ''
      out.push([`§4 peak RSS ≤ 120 MB at ${fmtInt(big.count)} lines`, fmtMB(big.peak) + note, mark(big.peak <= 120 * 1048576)])
      if (small !== big) {
        const growth = big.peak / small.peak
        out.push([`§4 bounded: peak at ${fmtInt(big.count)} ≤ 1.15 × peak at ${fmtInt(small.count)} lines`, fmtNum(growth) + ' ×', mark(growth <= 1.15)])
      }
      out.push(['§4 bitrix24:stats event on close', big.statsMissing > 0 ? `missing in ${big.statsMissing} run(s)` : 'received', mark(big.statsMissing === 0)])
    } else {
      out.push(['§4 memory', 'all runs failed', mark(false)])
    }
  }
  if (res.latency) {
    const file = res.latency.find((r) => r.variant.key === 'file')
    const ours = res.latency.find((r) => r.variant.key === 'bitrix24')
    const p50 = ours.p50 / file.p50
    const p99 = ours.p99 / file.p99
    out.push(['§5 no measurable main-thread cost: p50 ≤ 1.10 ×, p99 ≤ 1.25 × pino/file', `${fmtNum(p50)} × / ${fmtNum(p99)} ×`, mark(p50 <= 1.1 && p99 <= 1.25)])
  }
  if (res.context) out.push(...contextTargets(res.context, { fmtNum }))
  if (res.rate && res.rate.run.error === undefined) {
    out.push([`§6 all ${res.rate.count} entries delivered under the rate limit`, fmtPct(res.rate.sim.lines / res.rate.count), mark(res.rate.sim.lines === res.rate.count)])
  }
  if (res.budget) {
    for (const r of res.budget) {
      if (r.run.error !== undefined) {
        out.push([`§8 ${r.sc.key}: 100 % delivered`, 'failed', mark(false)])
        continue
      }
      out.push([`§8 ${r.sc.name}: 100 % delivered`, fmtPct(r.sim.lines / r.total), mark(r.sim.lines === r.total)])
      if (r.sc.complete) out.push([`§8 ${r.sc.key}: every completion delivered`, `${r.sim.completions} of ${r.sc.tokens}`, mark(r.sim.completions === r.sc.tokens)])
      if (!r.sc.serveOn) out.push(['§8 at most 5 entries per workflow', r.sim.entriesPerToken === null ? '—' : fmtInt(r.sim.entriesPerToken.max), mark(r.sim.entriesPerToken !== null && r.sim.entriesPerToken.max <= 5)])
    }
  }
  if (res.long) {
    for (const r of res.long.after) {
      // Every line fits the newest 50 rows when nothing had to be left out.
      if (r.omitted === 0) out.push([`§11 ${r.name}: ≤ 40 rows, every line visible`, `${fmtInt(r.rows)} rows, ${fmtPct(r.visible / r.lines)}`, mark(r.rows <= 40 && r.visible === r.lines)])
      else out.push([`§11 ${r.name}: ≤ 40 rows, what is left out named`, `${fmtInt(r.rows)} rows, ${fmtInt(r.omitted)} omitted`, mark(r.rows <= 40 && r.visible + r.omitted === r.lines)])
      out.push([`§11 ${r.name}: p95 delay ≤ max(flushInterval, 35 % of age)`, `${fmtPct(r.lateShare)} of lines later`, mark(r.lateShare <= 0.05)])
    }
  }
  if (res.brisk) {
    const b = res.brisk
    out.push(['§12 brisk: ≤ 40 rows, all lines visible, first row ≤ 5 s, p95 ≤ 30 s, completed', `${b.rows} rows, ${b.visible}/${b.lines}, ${fmtNum(b.firstRowMs / 1000, 1)} s, ${fmtNum(b.p95 / 1000, 1)} s`, mark(b.rows <= 40 && b.visible === b.lines && b.firstRowMs <= 5000 && b.p95 <= 30000 && b.completed)])
  }
  if (res.spool && !res.spool.skipped) out.push(spoolTarget(res.spool, { fmtNum }))
  if (res.flood && Number.isFinite(res.flood.diff)) {
    const d = res.flood.diff
    out.push(['§9 flood: peak RSS ≤ floor + 40 MB (median of rounds), at most one round over + 64 MB', `+${fmtMB(d)}; ${res.flood.over64} over +64 MB`, mark(d <= 40 * 1048576 && res.flood.over64 <= 1)])
  }
  return out.length === 0 ? '' : table(['target', 'measured', ''], out)
}

function report (res, info, elapsedMs) {
  const parts = []
  parts.push(`Machine: ${info.cpu}, ${info.cores} cores, ${(info.memory / 1073741824).toFixed(0)} GiB RAM, Node ${info.node}, ${info.platform}; load average at start ${info.load.map((l) => l.toFixed(2)).join(' ')}. ` +
    `pino ${pinoVersion}. Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${flags.quick ? 'quick' : 'full'} mode, ${plan.reps} rounds, ${fmtNum(elapsedMs / 1000, 0)} s in all. ` +
    'Every run is its own process; servers run in another. Figures are medians over the rounds; "× floor" is the median of per-round ratios (higher is better).')
  if (res.throughput) {
    parts.push(`**1. Throughput** — ${fmtInt(plan.lines)} lines over ${plan.tokens} tokens, every line with an \`eventToken\`, from the first line to the worker closed; CPU is the whole app process (main thread + worker).\n\n` + throughputTable(res.throughput, plan.lines))
  }
  if (res.tokenless) {
    parts.push('**2. Lines without a token** — as §1, but 90 % of the lines carry no `eventToken`.\n\n' + throughputTable(res.tokenless, plan.lines))
  }
  if (res.economy) {
    parts.push('**3. Request economy** — default flushInterval (2000 ms) and maxEntryBytes (16384), pacing off.\n\n' + economyTable(res.economy))
  }
  if (res.memory) {
    parts.push(`**4. Memory under a stalled server** — the simulator never answers; ${plan.tokens} tokens; default maxBufferedBytes (8 MiB); peak RSS of the whole app process (main thread + worker), ${plan.memoryReps} round(s).\n\n` + memoryTable(res.memory))
  }
  if (res.latency) {
    parts.push(`**5. Main-thread cost of \`logger.info\`** — ${fmtInt(plan.latency.calls)} timed calls after ${fmtInt(plan.latency.warmup)} warm-up calls, the app yielding every ${plan.latency.yieldEvery} calls.\n\n` + latencyTable(res.latency))
  }
  if (res.rate) {
    parts.push(`**6. Rate-limited delivery** — simulator limited to ${plan.rate.rps} rps (burst ${plan.rate.burst}), transport pacing at its defaults (2 rps, burst 5); the minimum adds the 2000 ms flushInterval before the first entry.\n\n` + rateTable(res.rate, 2000))
  }
  if (res.context) {
    parts.push(`**7. Main-thread cost of the context hook and mixin** — \`logger.info\` with \`pino-bitrix24-workflow/context\`'s hook or mixin, every variant through pino/file to /dev/null; ${fmtInt(plan.latency.calls)} timed calls after ${fmtInt(plan.latency.warmup)} warm-up calls, as §5.\n\n` + contextTable(res.context, { table, fmtNum }))
  }
  if (res.budget) {
    parts.push(`**8. Request budget** — the simulator limited like a portal: ${plan.budget.rps} requests/s drained, bucket ${plan.budget.burst}, answers in ${plan.budget.latency} ms; default options. Line → entry is from a line's log time to the arrival of the request that carried it.\n\n` + budgetTable(res.budget))
  }
  if (res.flood) {
    parts.push(`**9. Memory under a flood into a stalled server** — ${plan.flood.tokens} tokens × ${fmtInt(plan.flood.perToken)} lines of ~${plan.flood.msgBytes} bytes of text, as fast as possible; pino's own backlog in the main thread dominates both, so the difference is the figure; ${plan.memoryReps} round(s).\n\n` + floodTable(res.flood))
  }
  if (res.processes) {
    parts.push(`**10. Several processes on one key** — ${res.processes.entries} entries in all (one line for each of as many tokens), split among N processes logging at once, each through its own pino worker, into a simulator limited to ${2} rps (burst 5); transport pacing at its defaults (2 rps, burst 5), with and without \`redisUrl\` (a local redis-server).\n\n` + processesTable(res.processes, { table, fmtInt, fmtNum, fmtPct }))
  }
  if (res.long) {
    parts.push('**11. Long activities** — one workflow logging ~45-byte lines at a steady rate, then completing; in-process on a fake clock (a day runs in seconds), a stub server answering in 150 ms and keeping, like Bitrix24, the newest 50 rows (the completion\'s message is a row). Default options (maxRows 40), then the same with `maxRows: 0` (the transport before the row budget). Delay is from a line\'s log time to the request that carried it.\n\n' +
      longTable(res.long.after, { table, fmtInt, fmtPct }) + '\n\nWith `maxRows: 0`:\n\n' + longTable(res.long.before, { table, fmtInt, fmtPct }))
  }
  if (res.brisk) {
    const b = res.brisk
    parts.push(`**12. A brisk workflow, in real time** — a line every 600 ms for 2 minutes, \`flushInterval: 500\`, then completing, through \`pino.transport\` by name against the simulator limited to 2 requests/s (bucket 10), keeping the newest 50 rows: ${b.rows} rows, ${b.requests} requests, ${b.visible} of ${b.lines} lines visible, first row ${fmtNum(b.firstRowMs / 1000, 1)} s after the first line, log → row p50 ${fmtNum(b.p50 / 1000, 1)} s, p95 ${fmtNum(b.p95 / 1000, 1)} s, max ${fmtNum(b.max / 1000, 1)} s; completed: ${b.completed ? 'yes' : 'no'}.`)
  }
  if (res.spool && !res.spool.skipped) {
    parts.push(`**13. The disk spool** — as §1 (${fmtInt(plan.lines)} lines over ${plan.tokens} tokens, pacing off), in memory only and with \`spoolDir\` on this machine's disk; bytes written / line is the app process's \`write_bytes\` (/proc/self/io) beyond the memory-only run of the same round. Then the time for a new process to take over a spool of 100,000 lines left by an ended one.\n\n` + spoolTables(res.spool, { table, fmtInt, fmtNum, fmtMB, fmtPct }))
  }
  const summary = targets(res)
  if (summary !== '') parts.push('**Targets**\n\n' + summary)
  return parts.join('\n\n')
}

function writeReadme (markdown) {
  if (!fs.existsSync(flags.readme)) {
    log(`note: ${path.relative(process.cwd(), flags.readme) || 'README.md'} does not exist; --write-readme skipped`)
    return
  }
  const text = fs.readFileSync(flags.readme, 'utf8')
  const start = text.indexOf(MARK_START)
  const end = start === -1 ? -1 : text.indexOf(MARK_END, start + MARK_START.length)
  if (start === -1 || end === -1) {
    log(`note: ${path.relative(process.cwd(), flags.readme)} has no ${MARK_START} … ${MARK_END} markers; --write-readme skipped`)
    return
  }
  fs.writeFileSync(flags.readme, text.slice(0, start + MARK_START.length) + '\n' + markdown + '\n' + text.slice(end))
  log(`${path.relative(process.cwd(), flags.readme)} updated between the bench markers`)
}

// ---------------------------------------------------------------- main

const startedAt = Date.now()

async function main () {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    console.error('bench: dist/ is missing; run `npm run bench` (it builds first)')
    process.exit(1)
  }
  const info = machine()
  const want = new Set(flags.only)
  const res = {}
  log(`${info.cpu}, ${info.cores} cores, Node ${info.node}; ${flags.quick ? 'quick' : 'full'} mode, ${plan.reps} rounds`)

  // The rate-limited case is idle but for a request every half second:
  // --parallel runs it beside the CPU measurements (which count only their own
  // process); by default it runs alone at the end.
  let ratePromise
  if (want.has('rate') && flags.parallel) {
    log(`rate: started in the background (${plan.rate.count} entries, about ${fmtInt(2 + (plan.rate.count - plan.rate.burst) / plan.rate.rps)} s)`)
    ratePromise = rate()
  }
  const server = await Server.start()
  try {
    if (want.has('throughput')) res.throughput = await throughput(server)
    if (want.has('tokenless')) res.tokenless = await tokenless(server)
    if (want.has('economy')) res.economy = await economy(server, res.throughput)
    if (want.has('latency')) res.latency = await latency(server)
    if (want.has('memory')) res.memory = await memory(server)
    if (want.has('context')) res.context = await contextCost({ plan, runApp, log, median })
    if (want.has('flood')) res.flood = await flood(server)
    if (want.has('spool')) res.spool = await spoolCost({ plan, runApp, log, median, server })
  } finally {
    await server.close()
  }
  if (want.has('rate')) {
    if (ratePromise === undefined) {
      log(`rate: ${plan.rate.count} entries, about ${fmtInt(2 + (plan.rate.count - plan.rate.burst) / plan.rate.rps)} s`)
      ratePromise = rate()
    } else {
      log('rate: waiting for the background run')
    }
    res.rate = await ratePromise
  }
  if (want.has('budget')) res.budget = await budget()
  if (want.has('processes')) res.processes = await processes({ quick: flags.quick, verbose: flags.verbose, log })
  if (want.has('long')) {
    // The same cases with the row budget off (maxRows: 0) are how the transport behaved before it.
    res.long = { after: await longActivities(), before: await longActivities({ maxRows: 0 }) }
    log('long: done')
  }
  if (want.has('brisk')) {
    log('brisk: a line every 600 ms for 2 minutes, in real time')
    res.brisk = await brisk()
  }

  const markdown = report(res, info, Date.now() - startedAt)
  process.stdout.write(markdown + '\n')
  if (flags.json) fs.writeFileSync(flags.json, JSON.stringify({ plan, machine: info, results: res }, null, 2))
  if (flags.writeReadme) writeReadme(markdown)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
