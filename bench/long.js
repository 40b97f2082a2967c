'use strict'

// Section "long activities": one workflow logging at a steady rate for a
// minute to a day, then completing, run in-process on a fake clock so that a
// day takes seconds. The sender is a stub that answers in 150 ms and keeps
// what a Bitrix24 cloud portal keeps: the newest 50 rows of the workflow, the
// completion's message counting as a row. What is measured is the transport's
// schedule (dist/lib/delivery.js), not the network.
//
//   node bench/long.js [--max-rows=N] [--json]

const FakeTimers = require('@sinonjs/fake-timers')
const { Delivery } = require('../dist/lib/delivery')
const { parseOptions } = require('../dist/lib/options')
const { Reporter } = require('../dist/lib/reporter')
const { createStats } = require('../dist/lib/stats')

const KEPT_ROWS = 50
const LATENCY = 150
const TOKEN = 'bench-token|A1|0123456789abcdef'

const CASES = [
  { name: '1 min at 1 line/s', seconds: 60, perSecond: 1 },
  { name: '10 min at 1 line/s', seconds: 600, perSecond: 1 },
  { name: '1 h at 1 line/s', seconds: 3600, perSecond: 1 },
  { name: '8 h at 1 line/s', seconds: 28800, perSecond: 1 },
  { name: '24 h at 1 line/s', seconds: 86400, perSecond: 1 },
  { name: '1 h at 20 lines/s', seconds: 3600, perSecond: 20 },
  // The brisk run: a line every 600 ms for 2 min, flushInterval 500.
  { name: '2 min, a line every 600 ms, flushInterval 500', seconds: 120, perSecond: 1000 / 600, options: { flushInterval: 500 } }
]

function percentile (sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}

/** One case: returns rows used, lines visible in the newest 50 rows, lines omitted, delays. */
async function runCase (c, extra = {}) {
  const fake = FakeTimers.createClock(1_700_000_000_000)
  const clock = {
    now: () => fake.now,
    setTimeout: (fn, ms) => fake.setTimeout(fn, ms),
    clearTimeout: (h) => fake.clearTimeout(h)
  }
  const config = parseOptions({ apiKey: 'vibe_api_bench_key', baseUrl: 'http://127.0.0.1:9', quiet: true, ...c.options, ...extra }, {})
  const rows = []
  let requests = 0
  const sent = new Map() // line number -> time its row arrived
  const sender = {
    post: (path, payload) => {
      requests++
      const at = fake.now
      return new Promise((resolve) => {
        fake.setTimeout(() => {
          if (typeof payload.logMessage === 'string' && payload.logMessage.trim() !== '') {
            rows.push(payload.logMessage)
            for (const m of payload.logMessage.matchAll(/line (\d+) /g)) if (!sent.has(m[1])) sent.set(m[1], at)
          }
          resolve({ status: 200, body: '{"success":true,"data":null}' })
        }, LATENCY)
      })
    },
    destroy: async () => {}
  }
  const stats = createStats()
  const delivery = new Delivery(config, sender, clock, new Reporter(() => {}, clock), () => {}, stats)
  const step = 1000 / c.perSecond
  const total = Math.round(c.seconds * c.perSecond)
  const t0 = fake.now
  const loggedAt = new Array(total)
  const pad = ' payload '.repeat(4)
  for (let i = 0; i < total; i++) {
    // Lines logged at fractional ms land on the next whole ms.
    const due = t0 + Math.round(i * step)
    if (due > fake.now) await fake.tickAsync(due - fake.now)
    loggedAt[i] = fake.now
    delivery.add(TOKEN, `line ${i} ${pad}`)
  }
  await fake.tickAsync(Math.round(step))
  delivery.complete(TOKEN, 'done', { ok: true })
  for (let i = 0; i < 100 && stats.completions === 0; i++) await fake.tickAsync(1000)
  const visible = new Set()
  for (const row of rows.slice(-KEPT_ROWS)) for (const m of row.matchAll(/line (\d+) /g)) visible.add(m[1])
  const delays = []
  let late = 0
  for (let i = 0; i < total; i++) {
    const at = sent.get(String(i))
    if (at === undefined) continue
    const delay = at - loggedAt[i]
    delays.push(delay)
    // Liveness: a line waits at most max(flushInterval, 35 % of the activity's age at that line).
    if (delay > Math.max(config.flushInterval, 0.35 * (loggedAt[i] - t0))) late++
  }
  const first = sent.get('0') === undefined ? null : sent.get('0') - loggedAt[0]
  delays.sort((a, b) => a - b)
  return {
    name: c.name,
    lines: total,
    rows: rows.length,
    requests,
    visible: visible.size,
    omitted: stats.dropped.omitted ?? 0,
    completed: stats.completions,
    first,
    p50: percentile(delays, 0.5),
    p95: percentile(delays, 0.95),
    max: delays.length === 0 ? null : delays[delays.length - 1],
    lateShare: total === 0 ? 0 : late / total
  }
}

async function longActivities (extra = {}) {
  const out = []
  for (const c of CASES) out.push(await runCase(c, extra))
  return out
}

function fmtDelay (ms) {
  if (ms === null) return '—'
  return ms < 60000 ? (ms / 1000).toFixed(1) + ' s' : (ms / 60000).toFixed(1) + ' min'
}

function longTable (rows, { table, fmtInt, fmtPct }) {
  return table(
    ['case', 'lines', 'rows used', 'requests', 'lines visible in the newest 50 rows', 'lines omitted', 'first row', 'log → row p50', 'p95', 'max', 'lines later than max(flushInterval, 35 % of age)', 'completed'],
    rows.map((r) => [r.name, fmtInt(r.lines), fmtInt(r.rows), fmtInt(r.requests), `${fmtInt(r.visible)} (${fmtPct(r.visible / r.lines)})`, fmtInt(r.omitted),
      fmtDelay(r.first), fmtDelay(r.p50), fmtDelay(r.p95), fmtDelay(r.max), fmtPct(r.lateShare), r.completed === 1 ? 'yes' : 'no'])
  )
}

module.exports = { longActivities, longTable, runCase, CASES }

if (require.main === module) {
  const arg = process.argv.find((a) => a.startsWith('--max-rows='))
  const extra = arg === undefined ? {} : { maxRows: Number(arg.slice(11)) }
  const fmtInt = (n) => Math.round(n).toLocaleString('en-US')
  const fmtPct = (s) => (s * 100).toFixed(s === 1 || s === 0 ? 0 : 1) + ' %'
  const table = (head, rows) => [head, head.map(() => '---'), ...rows].map((r) => '| ' + r.join(' | ') + ' |').join('\n')
  longActivities(extra).then((rows) => {
    if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 2))
    else console.log(longTable(rows, { table, fmtInt, fmtPct }))
  }, (err) => {
    console.error(err)
    process.exit(1)
  })
}
