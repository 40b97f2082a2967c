'use strict'

// §11 of bench/run.js: the disk spool (spoolDir). Throughput, memory and
// bytes written per line with and without it (each run a process of its own,
// as §1, the variants in rotating order), and the time to replay 100k lines
// that an ended process left: reading its spool (in a child process first, as
// for any foreign spool, then in-process) and queueing the lines.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const DIST = path.join(__dirname, '..', 'dist', 'lib')

const VARIANTS = [
  { key: 'memory', label: 'pino-bitrix24-workflow, memory only', spool: false },
  { key: 'spool', label: '**pino-bitrix24-workflow with spoolDir**', spool: true }
]

function tempDir () {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'b24-bench-spool-'))
}

async function throughputRuns ({ plan, runApp, log, median, server }) {
  const runs = { memory: [], spool: [] }
  for (let r = 0; r < plan.reps; r++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length])
    for (const v of order) {
      await server.call('reset')
      const dir = v.spool ? tempDir() : undefined
      try {
        const options = { maxRequestsPerSecond: 0, ...(dir === undefined ? {} : { spoolDir: dir }) }
        const result = await runApp({ mode: 'throughput', variant: 'bitrix24', options, count: plan.lines, tokens: plan.tokens, tokenShare: 1, urls: server.urls })
        result.delivered = (await server.call('counts')).sim.lines
        runs[v.key].push(result)
      } catch (err) {
        log(`FAILED ${err.message.split('\n')[0]}`)
        runs[v.key].push({ error: err.message })
      } finally {
        if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
      }
    }
    log(`spool: round ${r + 1}/${plan.reps} done`)
  }
  const base = runs.memory
  return VARIANTS.map((v) => {
    const list = runs[v.key]
    const ok = list.filter((r) => r.error === undefined)
    const ratios = list.map((r, i) => r.error === undefined && base[i].error === undefined ? base[i].cpuMs / r.cpuMs : NaN).filter(Number.isFinite)
    const written = list.map((r, i) => r.error === undefined && base[i].error === undefined ? (r.ioWriteBytes - base[i].ioWriteBytes) / plan.lines : NaN).filter(Number.isFinite)
    return {
      variant: v,
      failed: list.length - ok.length,
      lpcs: median(ok.map((r) => plan.lines / (r.cpuMs / 1000))),
      ratio: median(ratios),
      wallMs: median(ok.map((r) => r.wallMs)),
      peakRss: median(ok.map((r) => r.peakRss)),
      bytesPerLine: v.spool ? median(written) : 0,
      delivered: ok.length === 0 ? 0 : Math.min(...ok.map((r) => r.delivered / plan.lines))
    }
  })
}

/** Writes `lines` lines over `tokens` tokens into a spool, as a killed process leaves it. */
async function leaveSpool (dir, lines, tokens) {
  const { openSpool } = require(path.join(DIST, 'spool'))
  const { parseOptions } = require(path.join(DIST, 'options'))
  const { createStats } = require(path.join(DIST, 'stats'))
  const { TokenQueue } = require(path.join(DIST, 'token-queue'))
  const config = parseOptions({ apiKey: 'vibe_api_test_key', spoolDir: dir, spoolMaxBytes: 2 ** 34 }, {})
  const { spool } = await openSpool(config, createStats(), () => {}, Date.now())
  const queues = Array.from({ length: tokens }, (_, k) => new TokenQueue(`wf${String(k).padStart(6, '0')}.bench.token`, 65535))
  const text = '12:00:00 INFO step 1234 of the import: rows parsed rows=120 file=upload.csv'
  for (let i = 0; i < lines; i++) {
    const queue = queues[i % tokens]
    queue.push(text, text.length, 0)
    spool.line(queue, text, text.length, Date.now())
  }
  // Closed with every line unsettled: the file stays, and its owner is gone.
  await spool.close()
}

async function replayRun (lines, tokens) {
  const { openSpool } = require(path.join(DIST, 'spool'))
  const { parseOptions } = require(path.join(DIST, 'options'))
  const { createStats } = require(path.join(DIST, 'stats'))
  const { Delivery } = require(path.join(DIST, 'delivery'))
  const { Drops } = require(path.join(DIST, 'drops'))
  const { Reporter } = require(path.join(DIST, 'reporter'))
  const { replay } = require(path.join(DIST, 'replay'))
  const { systemClock } = require(path.join(DIST, 'clock'))
  const dir = tempDir()
  try {
    await leaveSpool(dir, lines, tokens)
    const size = fs.readdirSync(dir).filter((f) => f.endsWith('.mdb')).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0)
    // Big enough to hold what is replayed: this measures reading and queueing, not eviction.
    const config = parseOptions({ apiKey: 'vibe_api_test_key', baseUrl: 'http://127.0.0.1:9', spoolDir: dir, maxBufferedBytes: 2 ** 31, maxTokens: tokens * 2, flushInterval: 3600000 }, {})
    const stats = createStats()
    const reporter = new Reporter(() => {}, systemClock)
    const t0 = process.hrtime.bigint()
    const opened = await openSpool(config, stats, () => {}, Date.now())
    const t1 = process.hrtime.bigint()
    const sender = { post: () => new Promise(() => {}), destroy: async () => {} }
    const delivery = new Delivery(config, sender, systemClock, reporter, () => {}, stats, undefined, opened.spool)
    replay(opened.recovered, delivery, new Drops(stats, reporter, () => {}, config.maxBufferedBytes), stats, reporter, () => {})
    const t2 = process.hrtime.bigint()
    // The replayed lines written into the new owner's spool, and the adopted file removed.
    await opened.spool.flush()
    const t3 = process.hrtime.bigint()
    await opened.spool.close()
    return { replayed: stats.replayed, fileBytes: size, readMs: Number(t1 - t0) / 1e6, queueMs: Number(t2 - t1) / 1e6, rewriteMs: Number(t3 - t2) / 1e6 }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function spoolCost ({ plan, runApp, log, median, server }) {
  try {
    require.resolve('lmdb')
  } catch {
    log('spool: lmdb is not installed (npm install lmdb); section skipped')
    return { skipped: true }
  }
  const throughput = await throughputRuns({ plan, runApp, log, median, server })
  const replays = []
  for (let r = 0; r < plan.memoryReps; r++) replays.push(await replayRun(100000, plan.tokens))
  log('spool: replay done')
  const pick = (key) => median(replays.map((x) => x[key]))
  return { throughput, replay: { lines: 100000, tokens: plan.tokens, replayed: Math.min(...replays.map((x) => x.replayed)), fileBytes: pick('fileBytes'), readMs: pick('readMs'), queueMs: pick('queueMs'), rewriteMs: pick('rewriteMs') } }
}

function spoolTables (res, { table, fmtInt, fmtNum, fmtMB, fmtPct }) {
  const t1 = table(
    ['target', 'lines / CPU-s', '× memory only', 'wall ms', 'peak RSS', 'bytes written / line', 'delivered (worst run)'],
    res.throughput.map((row) => [
      row.variant.label + (row.failed > 0 ? ` ⚠ ${row.failed} run(s) failed` : ''),
      fmtInt(row.lpcs),
      fmtNum(row.ratio),
      fmtInt(row.wallMs),
      fmtMB(row.peakRss),
      row.variant.spool ? fmtInt(row.bytesPerLine) : '—',
      fmtPct(row.delivered)
    ])
  )
  const r = res.replay
  const t2 = table(
    ['replay of a left spool', 'lines', 'spool file', 'read (probe in a child + read)', 'queue into delivery', 'written to the new spool', 'total'],
    [[`${fmtInt(r.lines)} lines over ${r.tokens} workflows`, fmtInt(r.replayed), fmtMB(r.fileBytes), `${fmtInt(r.readMs)} ms`, `${fmtInt(r.queueMs)} ms`, `${fmtInt(r.rewriteMs)} ms`, `${fmtInt(r.readMs + r.queueMs + r.rewriteMs)} ms`]]
  )
  return t1 + '\n\n' + t2
}

function spoolTarget (res, { fmtNum }) {
  const row = res.throughput.find((r) => r.variant.spool)
  return ['§11 with spoolDir: lines / CPU-s ≥ 0.8 × memory only', fmtNum(row.ratio) + ' ×', row.ratio >= 0.8 ? '✅ met' : '❌ missed']
}

module.exports = { spoolCost, spoolTables, spoolTarget }
