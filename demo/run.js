'use strict'

// Runs demo/activity.js for three workflows at once and shows what Bitrix24
// would show. Against the Vibe API simulator by default; against the real API
// when BITRIX24_API_KEY is set (see demo/README.md).

const { once } = require('node:events')
const { randomBytes } = require('node:crypto')
const { startSimulator } = require('pino-bitrix24-workflow/simulator')
const { createLogger, importContacts } = require('./activity')

const FILES = ['contacts-march.csv', 'contacts-april.csv', 'contacts-legacy.csv']
const SIM_KEY = 'vibe_api_test_key'

// Shaped like a real event token: workflow id | activity name | secret.
function fakeToken (i) {
  return `${randomBytes(6).toString('hex')}.${10000000 + i}|A${10000 + i}_${randomBytes(2).readUInt16BE()}|${randomBytes(16).toString('base64url')}`
}

function short (token) {
  return token.length <= 16 ? token : `${token.slice(0, 10)}…${token.slice(-4)}`
}

function printWorkflow (sim, token, file) {
  console.log(`\n── workflow ${short(token)} (${file})`)
  for (const entry of sim.entries(token)) {
    const [first, ...rest] = entry.split('\n')
    console.log(`   • ${first}`)
    for (const line of rest) console.log(`     ${line}`)
  }
  const result = outcome(sim.event(token))
  console.log(`   ${result.mark} ${result.text}`)
  return result
}

// A completion carries the handler's own verdict in its return values: an
// activity completed with status 'failed' is a failed import, not a success.
function outcome (event) {
  if (event === undefined) return { state: 'waiting', mark: '✗', text: 'not completed: the activity is still waiting' }
  const values = JSON.stringify(event.returnValues)
  if (event.returnValues.status === 'ok') return { state: 'ok', mark: '✔', text: `completed, return values ${values}` }
  return { state: 'failed', mark: '✗', text: `failed: completed with return values ${values}` }
}

async function main () {
  const real = Boolean(process.env.BITRIX24_API_KEY)
  let sim
  let tokens
  let options
  if (real) {
    tokens = (process.env.DEMO_EVENT_TOKENS ?? '').split(',').map((t) => t.trim()).filter(Boolean)
    if (tokens.length === 0) {
      console.error('BITRIX24_API_KEY is set: put real event tokens in DEMO_EVENT_TOKENS (comma-separated), see demo/README.md')
      process.exitCode = 1
      return
    }
    tokens = tokens.slice(0, FILES.length)
    options = {} // the transport reads BITRIX24_API_KEY and BITRIX24_BASE_URL itself
    console.log(`Real Vibe API (${process.env.BITRIX24_BASE_URL || 'https://vibecode.bitrix24.tech'}), ${tokens.length} workflow(s)`)
  } else {
    sim = await startSimulator()
    tokens = FILES.map((_, i) => fakeToken(i))
    options = { apiKey: SIM_KEY, baseUrl: sim.url }
    console.log(`Vibe API simulator at ${sim.url}, ${tokens.length} workflows`)
  }

  const { logger, transport } = createLogger(options)
  let stats
  transport.on('bitrix24:stats', (s) => { stats = s })

  const started = Date.now()
  await Promise.all(tokens.map((eventToken, i) => importContacts(logger, { eventToken, file: FILES[i] })))

  // Hand every line to the transport's worker, then close it: closing delivers what is queued.
  await new Promise((resolve) => logger.flush(resolve))
  transport.end()
  await once(transport, 'close')
  const took = Date.now() - started

  if (sim === undefined) {
    console.log('\nReal API: no simulator, so no log to print here; open the workflows in Bitrix24 to see their logs.')
    const dropped = stats === undefined ? 0 : Object.values(stats.dropped).reduce((a, b) => a + b, 0)
    if (stats !== undefined) {
      console.log(`${stats.requests} requests sent, ${stats.entries + stats.completions} entries, ${stats.delivered} lines delivered, ${dropped} dropped, in ${took} ms`)
    }
    // The transport explains any problem on stderr; fail the run so that it is noticed.
    if (stats === undefined || dropped > 0 || stats.completions < tokens.length) process.exitCode = 1
    return
  }

  const results = tokens.map((token, i) => printWorkflow(sim, token, FILES[i]))
  const entries = tokens.flatMap((token) => sim.entries(token))
  const lines = entries.reduce((n, entry) => n + entry.split('\n').length, 0)
  const count = (state) => results.filter((r) => r.state === state).length
  console.log(`\n${count('ok')} of ${tokens.length} imports succeeded, ${count('failed')} failed (the legacy file is meant to fail), ${count('waiting')} not completed`)
  console.log(`${sim.requests.length} requests sent, ${entries.length} entries, ${lines} lines, in ${took} ms`)
  await sim.close()
  // The demo works when every activity was completed, whichever way: a
  // failed import reported as failed is the transport doing its job.
  if (count('waiting') > 0) process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
