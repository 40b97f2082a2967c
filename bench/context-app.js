'use strict'

// One run of the context bench (bench/context.js): the main-thread cost of
// `logger.info` with the event-token hook or mixin of `pino-bitrix24-workflow/context`,
// outside a context and inside one, beside plain pino. Every variant writes
// through `pino.transport({ target: 'pino/file' })` to /dev/null, so that only
// what the mixin adds on the application's thread differs. Forked with the
// scenario as JSON in argv[2]; reports over IPC like bench/app.js.

const { once } = require('node:events')
const pino = require('pino')
const context = require('pino-bitrix24-workflow/context')
const { orderStep, timeInfo } = require('./lib/timing')

const scenario = JSON.parse(process.argv[2])
// See bench/app.js: keeps the process alive while it awaits the worker.
setInterval(() => {}, 1000)

const TOKEN = 'wf000001.5a3c1e.9f1d2b7c'

function loggerOptions (variant) {
  switch (variant) {
    case 'file':
    case 'child':
    case 'explicit': return {}
    case 'hookInside':
    case 'hookOutside': return { hooks: { logMethod: context.eventTokenLogMethod } }
    case 'alone': return { mixin: context.eventTokenMixin }
    case 'outside':
    case 'inside': return { mixin: context.eventTokenMixin, mixinMergeStrategy: context.eventTokenMergeStrategy }
    default: throw new Error(`unknown variant ${variant}`)
  }
}

async function latency () {
  const transport = pino.transport({ target: 'pino/file', options: { destination: '/dev/null' } })
  const closed = once(transport, 'close')
  const root = pino(loggerOptions(scenario.variant), transport)
  const logger = scenario.variant === 'child' ? root.child({ eventToken: TOKEN }) : root
  await once(transport, 'ready')
  // An app that runs activities has its AsyncLocalStorage enabled even where
  // it logs outside of them: enable it in every variant alike.
  context.withEventToken('wf.bench.warm', () => {})
  const fields = scenario.variant === 'explicit' ? (i) => orderStep(i, TOKEN) : (i) => orderStep(i)
  const run = () => timeInfo(logger, transport, scenario, fields)
  const timed = scenario.variant === 'inside' || scenario.variant === 'hookInside' ? await context.withEventToken(TOKEN, run) : await run()
  transport.end()
  await closed
  return timed
}

latency().then((result) => {
  process.send({ type: 'result', result }, () => process.exit(0))
}, (err) => {
  process.send({ type: 'error', error: String(err && err.stack) }, () => process.exit(1))
})
