import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { makeApp, runApp } from './fixtures/app'
import * as entry from '../context'
import * as context from '../lib/context'
import * as logMethod from '../lib/log-method'
import { runActivity } from '../lib/run-activity'
import * as errors from '../lib/errors'

// `pino-bitrix24-workflow/context`, resolved by package name from a separate
// app, as the application's main thread would load it.

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

t.test('types resolve under moduleResolution node10 (typesVersions) and node16 (exports); the main entry\'s still do', async (t) => {
  const dir = makeApp(t)
  const file = join(dir, 'uses-context.ts')
  writeFileSync(file, [
    "import { withEventToken, eventTokenMixin, eventTokenLogMethod, type EventTokenLogMethod, runActivity, type RunActivityOptions } from 'pino-bitrix24-workflow/context'",
    'export const hook: EventTokenLogMethod = eventTokenLogMethod',
    "import type { Options } from 'pino-bitrix24-workflow'",
    "export const transportOptions: Options = { tokenKey: 'eventToken' }",
    'const options: RunActivityOptions = { onError: () => ({ status: \'failed\' }) }',
    "export const token: string | undefined = withEventToken('wf.types', () => 'x')",
    'export const used = [eventTokenMixin, runActivity, options]',
    ''
  ].join('\n'))
  const kinds: Array<[string, ts.CompilerOptions]> = [
    ['node10', { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 }],
    ['node16', { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 }]
  ]
  for (const [name, options] of kinds) {
    // The library of Node 20's language (not the default, which adds the DOM's): what the package is built against.
    const program = ts.createProgram([file], { ...options, strict: true, noEmit: true, skipLibCheck: true, types: [], target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts'] })
    const messages = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    t.same(messages, [], `${name}: no type errors`)
  }
})
