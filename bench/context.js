'use strict'

// §7 of bench/run.js: the main-thread cost of `logger.info` with the
// event-token hook and mixin of `pino-bitrix24-workflow/context`. Each run is a
// process of its own (bench/context-app.js); the variants run round after
// round in rotating order, as everywhere in this bench. run.js passes in its
// helpers, so that the report reads like the other sections.

const path = require('node:path')
const { summarize } = require('./lib/timing')

const SCRIPT = path.join(__dirname, 'context-app.js')

const VARIANTS = [
  { key: 'file', label: 'pino/file → /dev/null, no mixin' },
  { key: 'child', label: 'no mixin, `logger.child({ eventToken })` (what a line inside a context should cost)' },
  { key: 'hookInside', label: '**eventTokenLogMethod**, inside a context (every line gets the token)' },
  { key: 'hookOutside', label: 'eventTokenLogMethod, outside a context' },
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
  // Ratios per round, then their median: the machine's noise moves both sides of a round alike.
  const ratio = (key, base) => median(runs[key].map((r, i) => r.error === undefined && runs[base][i].error === undefined ? r.p50Ns / runs[base][i].p50Ns : NaN).filter(Number.isFinite))
  return VARIANTS.map((v) => ({ variant: v, ...summarize(runs[v.key], median), p50Ratio: ratio(v.key, 'file'), p50ChildRatio: ratio(v.key, 'child') }))
}

function contextTable (rows, { table, fmtNum }) {
  const us = (ns) => Number.isFinite(ns) ? (ns / 1000).toFixed(2) : '—'
  return table(
    ['logger', 'p50 µs', 'p90 µs', 'p99 µs', 'p50 × no mixin (median of rounds)', 'p50 × child logger', 'p50 per run (µs)'],
    rows.map((row) => [
      row.variant.label + (row.failed > 0 ? ` ⚠ ${row.failed} run(s) failed` : ''),
      us(row.p50),
      us(row.p90),
      us(row.p99),
      fmtNum(row.p50Ratio),
      fmtNum(row.p50ChildRatio),
      row.p50s.map((ns) => (ns / 1000).toFixed(2)).join(' · ')
    ])
  )
}

/**
 * The target rows: outside a context the hook and the mixin cost nothing
 * measurable; inside one the hook costs what a child logger bound to the token costs.
 */
function contextTargets (rows, { fmtNum }) {
  const row = (key) => rows.find((r) => r.variant.key === key)
  const target = (label, value) => [label, `${fmtNum(value)} ×`, value <= 1.1 ? '✅ met' : '❌ missed']
  return [
    target('§7 hook inside a context: p50 ≤ 1.10 × a child logger', row('hookInside').p50ChildRatio),
    target('§7 hook outside a context: p50 ≤ 1.10 × no mixin', row('hookOutside').p50Ratio),
    target('§7 mixin outside a context: p50 ≤ 1.10 × no mixin', row('outside').p50Ratio)
  ]
}

module.exports = { contextCost, contextTable, contextTargets }
