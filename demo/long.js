'use strict'

// A long activity whose whole log survives. The simulator keeps, like
// Bitrix24 cloud, only the newest 50 rows of a workflow. One workflow logs a
// progress line every 100 ms for 30 s (300 lines) and completes, twice: with
// the default row budget (maxRows 40) and with the budget off (maxRows: 0).
// flushInterval is 100 ms so that 30 s stand for a much longer activity.
//
//   npm run build && node demo/long.js

const { once } = require('node:events')
const pino = require('pino')
const { startSimulator } = require('pino-bitrix24-workflow/simulator')

const LINES = 300
const EVERY_MS = 100

async function run (sim, eventToken, extra) {
  const transport = pino.transport({
    target: 'pino-bitrix24-workflow',
    options: { apiKey: 'vibe_api_test_key', baseUrl: sim.url, flushInterval: 100, ...extra }
  })
  const log = pino(transport).child({ eventToken })
  for (let i = 1; i <= LINES; i++) {
    log.info({ batch: i }, 'Imported batch %d of %d', i, LINES)
    await new Promise((resolve) => setTimeout(resolve, EVERY_MS))
  }
  log.info({ workflowEvent: { returnValues: { status: 'ok' } } }, 'Import finished')
  // Delivered before the transport is ended: ending blocks this thread, where the simulator runs.
  await new Promise((resolve) => log.flush(resolve))
  transport.end()
  await once(transport, 'close')
  const rows = sim.entries(eventToken)
  const visible = new Set()
  for (const row of rows) for (const m of row.matchAll(/batch=(\d+)/g)) visible.add(m[1])
  return { rows, written: rows.length + sim.erased(eventToken), erased: sim.erased(eventToken), visible: visible.size }
}

function show (label, r) {
  console.log(`\n── ${label}`)
  console.log(`   ${r.written} rows written, ${r.erased} erased by the portal; ${r.visible} of ${LINES} lines still in the log`)
  const first = r.rows[0].split('\n')
  const last = r.rows[r.rows.length - 1].split('\n')
  console.log(`   oldest row kept starts: ${first[0]}`)
  console.log(`   newest row ends:        ${last[last.length - 1]}`)
}

async function main () {
  const sim = await startSimulator()
  console.log(`Vibe API simulator at ${sim.url}, keeping the newest 50 rows of each workflow`)
  console.log(`Each workflow logs a line every ${EVERY_MS} ms for ${LINES * EVERY_MS / 1000} s, then completes.`)
  const budget = await run(sim, 'long.1|A1|budget', {})
  show('with the row budget (maxRows 40, the default)', budget)
  const off = await run(sim, 'long.2|A2|nobudget', { maxRows: 0 })
  show('without it (maxRows: 0)', off)
  await sim.close()
  if (budget.visible !== LINES) process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
