'use strict'

// The timed loop of the main-thread latency runs (bench/app.js §5 and
// bench/context-app.js §7), in one place so that both measure alike.

const { once } = require('node:events')
const { setImmediate: tick } = require('node:timers/promises')

const STEPS = ['received', 'validated', 'reserved', 'charged', 'shipped']

/**
 * What one call logs: an order step, with its event token first when given.
 * Object literals, not a spread: the shape of the object changes what pino's
 * serialisation costs, and that cost is inside the timed call.
 */
function orderStep (i, eventToken) {
  const step = STEPS[i % STEPS.length]
  return eventToken === undefined
    ? { orderId: 100000 + i, step, durationMs: i % 997 }
    : { eventToken, orderId: 100000 + i, step, durationMs: i % 997 }
}

/**
 * Times `scenario.calls` calls of `logger.info` after `scenario.warmup` untimed
 * ones, `fields(i)` giving each call's object. An application does other work
 * between log calls: every `yieldEvery` calls pino may hand its buffer to the
 * worker, and backpressure is respected. Returns the sorted samples' quantiles.
 */
async function timeInfo (logger, transport, scenario, fields) {
  const samples = new Float64Array(scenario.calls)
  const total = scenario.warmup + scenario.calls
  for (let i = 0; i < total; i++) {
    const obj = fields(i)
    const t0 = process.hrtime.bigint()
    logger.info(obj, 'order step finished')
    const t1 = process.hrtime.bigint()
    if (i >= scenario.warmup) samples[i - scenario.warmup] = Number(t1 - t0)
    if (i % scenario.yieldEvery === scenario.yieldEvery - 1) {
      if (transport.writableNeedDrain) await once(transport, 'drain')
      else await tick()
    }
  }
  samples.sort()
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]
  return { calls: scenario.calls, p50Ns: at(0.5), p90Ns: at(0.9), p99Ns: at(0.99), p999Ns: at(0.999), maxNs: samples[samples.length - 1] }
}

/** The medians of a section's rounds of timeInfo (failed rounds counted apart). */
function summarize (runs, median) {
  const ok = runs.filter((r) => r && r.error === undefined)
  return {
    failed: runs.length - ok.length,
    p50: median(ok.map((r) => r.p50Ns)),
    p90: median(ok.map((r) => r.p90Ns)),
    p99: median(ok.map((r) => r.p99Ns)),
    p999: median(ok.map((r) => r.p999Ns)),
    p50s: ok.map((r) => r.p50Ns),
    p99s: ok.map((r) => r.p99Ns)
  }
}

module.exports = { STEPS, orderStep, summarize, timeInfo }
