'use strict'

// The servers of a bench, in a process of their own so that their CPU is never
// counted against the measured application: the Vibe API simulator (for this
// transport) and the peers' ingest sink. Driven by bench/run.js over IPC:
// { id, cmd, arg } in, { id, result } or { id, error } out.

const path = require('node:path')
const { startSimulator } = require(path.join(__dirname, '..', 'dist', 'lib', 'simulator.js'))
const { startSink } = require('./sink')

function median (values) {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function simCounts (sim) {
  let lines = 0
  let entries = 0
  const perToken = []
  for (const list of sim.allEntries().values()) {
    entries += list.length
    perToken.push(list.length)
    for (const text of list) lines += text.split('\n').length
  }
  let firstAt = null
  let lastOkAt = null
  for (const record of sim.requests) {
    if (firstAt === null || record.at < firstAt) firstAt = record.at
    if (record.status === 200 && (lastOkAt === null || record.at > lastOkAt)) lastOkAt = record.at
  }
  const stats = sim.stats()
  const completions = sim.requests.filter((r) => r.path === '/v1/workflows/event' && r.status === 200).length
  return {
    completions,
    requests: stats.requests,
    byCode: stats.byCode,
    maxConcurrent: stats.maxConcurrent,
    lines,
    entries,
    tokens: perToken.length,
    entriesPerToken: perToken.length === 0
      ? null
      : { min: Math.min(...perToken), median: median(perToken), max: Math.max(...perToken) },
    firstAt,
    lastOkAt
  }
}

/**
 * Time from each line to the request that landed it, from lines that carry
 * `t=<epoch ms>` (the budget section logs them so): p50 and p95 in ms.
 */
function lineLatencies (sim) {
  const waits = []
  for (const record of sim.requests) {
    if (record.status !== 200 || record.body === null || typeof record.body !== 'object') continue
    const text = record.body.logMessage
    if (typeof text !== 'string') continue
    for (const m of text.matchAll(/ t=(\d+)/g)) waits.push(record.at - Number(m[1]))
  }
  waits.sort((a, b) => a - b)
  const at = (q) => waits.length === 0 ? null : waits[Math.min(waits.length - 1, Math.floor(q * waits.length))]
  return { lines: waits.length, p50: at(0.5), p95: at(0.95), max: at(1) }
}

async function main () {
  const opts = JSON.parse(process.argv[2] || '{}')
  // Every row is kept (keepRows 0) so that delivery is counted whole; bench/long.js measures what the newest 50 show.
  const sim = await startSimulator({ rateLimit: opts.rateLimit, latency: opts.latency, keepRows: 0 })
  const sink = await startSink()
  const commands = {
    counts: () => ({ sim: simCounts(sim), sink: sink.counts() }),
    latencies: () => lineLatencies(sim),
    reset: () => {
      sim.reset()
      sink.reset()
      return true
    },
    stall: (on) => {
      sim.stall(on === true)
      return true
    },
    close: async () => {
      await sim.close()
      await sink.close()
      return true
    }
  }
  process.on('message', async (msg) => {
    try {
      const result = await commands[msg.cmd](msg.arg)
      process.send({ id: msg.id, result })
      if (msg.cmd === 'close') process.disconnect()
    } catch (err) {
      process.send({ id: msg.id, error: String(err && err.stack) })
    }
  })
  process.send({ type: 'ready', simUrl: sim.url, sinkUrl: sink.url })
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
