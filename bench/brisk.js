'use strict'

// The brisk run, in real time (about 2 minutes): a workflow logs a
// line every 600 ms for 2 minutes with flushInterval 500, then completes,
// through pino.transport by name against the simulator limited to 2
// requests/s (bucket 10), keeping the newest 50 rows as Bitrix24 does.
// Prints rows used, lines visible, first row and log → row delays.
//
//   npm run build && node bench/brisk.js [--seconds=120] [--max-rows=N]

const pino = require('pino')
const { once } = require('node:events')
const { startSimulator } = require('pino-bitrix24-workflow/simulator')

const TOKEN = 'brisk.1|A1|0123456789abcdef'

async function brisk ({ seconds = 120, everyMs = 600, extra = {} } = {}) {
  const sim = await startSimulator({ rateLimit: { rps: 2, burst: 10 } })
  const transport = pino.transport({
    target: 'pino-bitrix24-workflow',
    options: { apiKey: 'vibe_api_test_key', baseUrl: sim.url, flushInterval: 500, quiet: true, ...extra }
  })
  const logger = pino(transport).child({ eventToken: TOKEN })
  const total = Math.round(seconds * 1000 / everyMs)
  const loggedAt = []
  const t0 = Date.now()
  for (let i = 0; i < total; i++) {
    const due = t0 + i * everyMs
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()))
    loggedAt.push(Date.now())
    logger.info('step %d of %d', i, total)
  }
  logger.info({ workflowEvent: { returnValues: { ok: true } } }, 'done')
  await new Promise((resolve) => logger.flush(resolve))
  transport.end()
  await once(transport, 'close')
  // When each line's row arrived, from the simulator's own record.
  const arrived = new Map()
  for (const req of sim.requests) {
    if (req.status !== 200) continue
    for (const m of String(req.body.logMessage ?? '').matchAll(/step (\d+) of/g)) if (!arrived.has(m[1])) arrived.set(m[1], req.at)
  }
  const visible = new Set()
  for (const row of sim.entries(TOKEN)) for (const m of row.matchAll(/step (\d+) of/g)) visible.add(m[1])
  const delays = loggedAt.map((at, i) => (arrived.get(String(i)) ?? NaN) - at).filter(Number.isFinite).sort((a, b) => a - b)
  const result = {
    lines: total,
    rows: sim.stats().rows,
    erased: sim.erased(TOKEN),
    requests: sim.requests.length,
    rateLimited: sim.stats().byCode.RATE_LIMITED ?? 0,
    visible: visible.size,
    completed: sim.event(TOKEN) !== undefined,
    firstRowMs: (arrived.get('0') ?? NaN) - loggedAt[0],
    p50: delays[Math.ceil(delays.length * 0.5) - 1],
    p95: delays[Math.ceil(delays.length * 0.95) - 1],
    max: delays[delays.length - 1]
  }
  await sim.close()
  return result
}

module.exports = { brisk }

if (require.main === module) {
  const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
  const extra = arg('max-rows') === undefined ? {} : { maxRows: Number(arg('max-rows')) }
  brisk({ seconds: Number(arg('seconds') ?? 120), extra }).then((r) => console.log(JSON.stringify(r)), (err) => {
    console.error(err)
    process.exit(1)
  })
}
