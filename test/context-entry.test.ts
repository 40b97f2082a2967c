import t from 'tap'
import { makeApp, runApp } from './fixtures/app'
import * as entry from '../context'
import * as context from '../lib/context'
import * as logMethod from '../lib/log-method'
import { runActivity } from '../lib/run-activity'
import * as errors from '../lib/errors'

// `pino-bitrix24-workflow/context`, resolved by package name from a separate
// app, as the application's main thread would load it. Its types, under every
// module resolution, are checked with the packed package's, in package.test.ts
// ('the packed package type-checks in an app, whatever its module resolution').

t.test('the entry exports exactly the context API', async (t) => {
  t.same(Object.keys(entry).sort(), [
    'Bitrix24TransportError',
    'ERR_INVALID_EVENT_TOKEN',
    'ERR_INVALID_OPTION',
    'createEventTokenLogMethod',
    'createEventTokenMixin',
    'currentEventToken',
    'eventTokenLogMethod',
    'eventTokenMergeStrategy',
    'eventTokenMixin',
    'runActivity',
    'withEventToken'
  ])
  t.equal(entry.withEventToken, context.withEventToken)
  t.equal(entry.currentEventToken, context.currentEventToken)
  t.equal(entry.eventTokenMixin, context.eventTokenMixin)
  t.equal(entry.createEventTokenMixin, context.createEventTokenMixin)
  t.equal(entry.eventTokenMergeStrategy, context.eventTokenMergeStrategy)
  t.equal(entry.eventTokenLogMethod, logMethod.eventTokenLogMethod)
  t.equal(entry.createEventTokenLogMethod, logMethod.createEventTokenLogMethod)
  t.equal(entry.runActivity, runActivity)
  t.equal(entry.Bitrix24TransportError, errors.Bitrix24TransportError)
  t.equal(entry.ERR_INVALID_EVENT_TOKEN, 'ERR_BITRIX24_INVALID_EVENT_TOKEN')
  t.equal(entry.ERR_INVALID_OPTION, 'ERR_BITRIX24_INVALID_OPTION')
})

t.test('require: loads neither the transport nor undici nor pino-abstract-transport', async (t) => {
  const dir = makeApp(t)
  const run = await runApp(dir, 'context-light.js', {})
  t.equal(run.code, 0, run.stderr)
  const out = JSON.parse(run.stdout) as { exports: string[], loaded: string[], all: string[], lines: unknown[] }
  t.same(out.exports, Object.keys(entry).sort())
  t.same(out.loaded.map((f) => f.replace(/^.*\/dist\//, 'dist/')).sort(), ['dist/context.js', 'dist/lib/context.js', 'dist/lib/errors.js', 'dist/lib/log-method.js', 'dist/lib/prefix.js', 'dist/lib/run-activity.js', 'dist/lib/token-length.js'])
  for (const heavy of ['undici', 'pino-abstract-transport', 'split2', '/dist/lib/delivery.js', '/dist/lib/transport.js', '/dist/lib/client.js', '/dist/index.js']) {
    t.notOk(out.all.some((f) => f.includes(heavy)), `${heavy} not loaded`)
  }
  t.same(out.lines, [{ level: 30, eventToken: 'wf.light', msg: 'inside' }])
})

t.test('import: named exports from an ES module', async (t) => {
  const dir = makeApp(t)
  const run = await runApp(dir, 'context-esm.mjs', {})
  t.equal(run.code, 0, run.stderr)
  t.same(JSON.parse(run.stdout), { kinds: Array(7).fill('function'), token: 'wf.esm' })
})
