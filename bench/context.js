'use strict'

// §7 of bench/run.js: the main-thread cost of `logger.info` with the
// event-token mixin of `pino-bitrix24-workflow/context`. Each run is a
// process of its own (bench/context-app.js); the variants run round after
// round in rotating order, as everywhere in this bench. run.js passes in its
// helpers, so that the report reads like the other sections.

const path = require('node:path')
const { summarize } = require('./lib/timing')

const SCRIPT = path.join(__dirname, 'context-app.js')

const VARIANTS = [
  { key: 'file', label: 'pino/file → /dev/null, no mixin' },
  { key: 'outside', label: '**eventTokenMixin + eventTokenMergeStrategy**, outside a context' },
  { key: 'inside', label: 'eventTokenMixin + eventTokenMergeStrategy, inside a context (every line gets the token)' },
  { key: 'explicit', label: 'no mixin, the token in each line\'s object (the line inside a context, written by hand)' },
  { key: 'alone', label: 'eventTokenMixin alone (pino\'s default merge strategy), outside a context' }
]

/** Runs every variant `plan.reps` times; returns one row per variant. */
async function contextCost ({ plan, runApp, log, median }) {
  const runs = Object.fromEntries(VARIANTS.map((v) => [v.key, []]))
  for (let r = 0; r < plan.reps; r++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length])
    for (const v of order) {
      try {
        runs[v.key].push(await runApp({ mode: 'context', variant: v.key, ...plan.latency }, { script: SCRIPT }))
      } catch (err) {
        log(`FAILED ${err.message.split('\n')[0]}`)
        runs[v.key].push({ error: err.message })
      }
    }
    log(`context: round ${r + 1}/${plan.reps} done`)
  }
  const base = runs.file
  return VARIANTS.map((v) => {
    // Ratios per round, then their median: the machine's noise moves both sides of a round alike.
    const ratios = runs[v.key].map((r, i) => r.error === undefined && base[i].error === undefined ? r.p50Ns / base[i].p50Ns : NaN).filter(Number.isFinite)
    return { variant: v, ...summarize(runs[v.key], median), p50Ratio: median(ratios) }
  })
}

function contextTable (rows, { table, fmtNum }) {
  const us = (ns) => Number.isFinite(ns) ? (ns / 1000).toFixed(2) : '—'
  return table(
    ['logger', 'p50 µs', 'p90 µs', 'p99 µs', 'p50 × no mixin (median of rounds)', 'p50 per run (µs)'],
    rows.map((row) => [
      row.variant.label + (row.failed > 0 ? ` ⚠ ${row.failed} run(s) failed` : ''),
      us(row.p50),
      us(row.p90),
      us(row.p99),
      fmtNum(row.p50Ratio),
      row.p50s.map((ns) => (ns / 1000).toFixed(2)).join(' · ')
    ])
  )
}

/** The target row: outside a context the mixin costs nothing measurable. */
function contextTarget (rows, { fmtNum }) {
  const outside = rows.find((r) => r.variant.key === 'outside')
  const ok = outside.p50Ratio <= 1.1
  return ['§7 mixin outside a context: p50 ≤ 1.10 × no mixin', `${fmtNum(outside.p50Ratio)} ×`, ok ? '✅ met' : '❌ missed']
}

module.exports = { contextCost, contextTable, contextTarget }
