// The package as npm ships it: packed with `npm pack`, unpacked where an app's
// node_modules would hold it, and type-checked by an app's compiler under
// every module resolution, the old node10 one included. Runs on the build in
// dist/ (npm test builds first) and offline: dependencies resolve from this
// repository's own node_modules, one directory up.

import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ts from 'typescript'
import pkg from '../package.json'
import * as index from '../index'
import { untracked } from './fixtures/untracked'

const root = join(__dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
// npm runs without the test runner's NODE_OPTIONS (untracked): they load tap's process tracking and
// coverage into npm and every node process it starts, which measured nothing of ours and cost seconds.
// An empty NODE_OPTIONS here did not do it: tap's spawn hook puts its own back.
const npmEnv = { ...process.env }

interface Packed { path: string, files: string[] }
let packing: Packed | undefined
/**
 * `npm pack` once for the file (it takes seconds): the type check and the
 * consumer install read the same tarball, as npm would ship it.
 */
function pack (): Packed {
  if (packing !== undefined) return packing
  const dir = mkdtempSync(join(tmpdir(), 'pino-bitrix24-pack-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const packed = JSON.parse(execFileSync(...untracked(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir]), { cwd: root, encoding: 'utf8', env: npmEnv })) as Array<{ filename: string, files: Array<{ path: string }> }>
  const tarball = packed[0] as { filename: string, files: Array<{ path: string }> }
  packing = { path: join(dir, tarball.filename), files: tarball.files.map((f) => f.path) }
  return packing
}

t.test('installing runs no script: the build is on prepack, not prepare', async (t) => {
  const scripts = pkg.scripts as Record<string, string>
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) t.notOk(hook in scripts, `no ${hook} script`)
  t.match(scripts.prepack, /npm run build/)
  // A clone builds when it needs dist/: the scripts that use it build first.
  for (const name of ['demo', 'bench', 'docs']) t.match(scripts[name], /^npm run build && /, `${name} builds first`)
  // The tests build too, beside dist/: first tap for its plugin list when a fresh install left it
  // built for the default one (the tests' type check reads its types), then the tests; tap starts
  // once both sides are done.
  t.match(scripts.test, /^npm run build & p=\$!; \{ node scripts\/tap-built\.js \|\| tap build; \} && npm run build:tests; r=\$\?; wait \$p && \[ \$r = 0 \] && .*\btap\b/, 'test builds first')
  // Running under tap, tap is built for the configured plugins, and the check says so.
  // Without the runner's TAP_* variables (TAP_PLUGIN among them), as `npm test` runs it.
  const env = Object.fromEntries(Object.entries(npmEnv).filter(([k]) => !k.startsWith('TAP')))
  const tapBuilt = (cwd: string): number | null => spawnSync(...untracked(process.execPath, [join(root, 'scripts', 'tap-built.js')]), { cwd, env }).status
  t.equal(tapBuilt(root), 0, 'tap-built.js: tap is built for the plugins in package.json')
  const other = mkdtempSync(join(tmpdir(), 'tap-built-'))
  t.teardown(() => rmSync(other, { recursive: true, force: true }))
  writeFileSync(join(other, 'package.json'), JSON.stringify({ name: 'other', tap: { plugin: ['!@tapjs/fixture'] } }))
  t.equal(tapBuilt(other), 1, 'and not for another list: tap build is due')
})

t.test('every export has its types, under node10 resolution too (typesVersions)', async (t) => {
  const exported = Object.entries(pkg.exports as Record<string, string | Record<string, string>>)
  const versions = (pkg.typesVersions as Record<string, Record<string, string[]>>)['*'] as Record<string, string[]>
  for (const [subpath, target] of exported) {
    if (typeof target === 'string') continue
    t.type(target.types, 'string', `${subpath} has types`)
    if (subpath === '.') {
      t.equal(pkg.types, target.types, 'the root types are the main types')
      continue
    }
    t.same(versions[subpath.slice(2)], [target.types], `${subpath} is mapped for node10 resolution`)
  }
})

t.test('defaults and RULES as exported cannot be changed', async (t) => {
  t.ok(Object.isFrozen(index.defaults))
  t.ok(Object.isFrozen(index.RULES))
  t.ok(Object.isFrozen(index.RULES.RATE_LIMITED))
  t.throws(() => { (index.RULES as Record<string, unknown>).RATE_LIMITED = { action: 'ok', advice: '' } }, TypeError)
  t.throws(() => { (index.defaults as { maxRetries: number }).maxRetries = 100 }, TypeError)
  t.equal(index.RULES.RATE_LIMITED?.action, 'rateLimited')
})

t.test('the packed package type-checks in an app, whatever its module resolution', async (t) => {
  // Under node_modules/.cache: ignored by git and linters, and its parents hold the dependencies.
  const app = join(root, 'node_modules', '.cache', `pack-test-${process.pid}`)
  rmSync(app, { recursive: true, force: true })
  mkdirSync(join(app, 'node_modules'), { recursive: true })
  t.teardown(() => rmSync(app, { recursive: true, force: true }))

  const tarball = pack()
  const files = tarball.files
  for (const file of ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/lib/simulator.d.ts', 'dist/context.js', 'dist/context.d.ts', 'dist/bin/cli.js']) {
    t.ok(files.includes(file), `ships ${file}`)
  }
  t.notOk(files.some((f) => f.startsWith('test/') || (f.endsWith('.ts') && !f.endsWith('.d.ts'))), 'no sources or tests')
  t.notOk(files.includes('dist/package.json'), 'no copy of package.json in dist/ (with scripts and devDependencies)')
  t.same(files.filter((f) => !/^(dist\/|package\.json$|README\.md$|CHANGELOG\.md$|LICENSE$)/.test(f)), [], 'nothing else: no docs/, demo/, bench/, scripts/')
  t.same(files.filter((f) => f.startsWith('dist/') && !/\.(js|d\.ts)$/.test(f)), [], 'dist/ holds only compiled code and types')

  execFileSync('tar', ['-xzf', tarball.path, '-C', join(app, 'node_modules')])
  renameSync(join(app, 'node_modules', 'package'), join(app, 'node_modules', 'pino-bitrix24-workflow'))
  const shipped = JSON.parse(readFileSync(join(app, 'node_modules', 'pino-bitrix24-workflow', 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.notOk('prepare' in shipped.scripts, 'the shipped package.json has no prepare script')

  writeFileSync(join(app, 'app.ts'), [
    "import build = require('pino-bitrix24-workflow')",
    "import { startSimulator, type Simulator } from 'pino-bitrix24-workflow/simulator'",
    "import { withEventToken, eventTokenMixin, eventTokenLogMethod, type EventTokenLogMethod, runActivity, type ActivityOutcome, type RunActivityOptions } from 'pino-bitrix24-workflow/context'",
    'export const token: string = withEventToken(\'wf.a\', () => \'x\')',
    'export const context = [eventTokenMixin, runActivity] as const',
    'export const hook: EventTokenLogMethod = eventTokenLogMethod',
    'export type Outcome = ActivityOutcome',
    // The context entry's own types and the main entry's, side by side (context-entry.test.ts had its own check of them).
    "export const activity: RunActivityOptions = { onError: () => ({ status: 'failed' }) }",
    "export const transportOptions: build.Options = { tokenKey: 'eventToken' }",
    'export async function main (): Promise<void> {',
    '  const sim: Simulator = await startSimulator({ apiKeys: [\'vibe_api_test_key\'] })',
    '  const options: build.Options = { apiKey: \'vibe_api_test_key\', baseUrl: sim.url, timeZone: \'UTC\' }',
    '  const stream: build.TransportStream = await build(options)',
    '  const n: number = sim.stats().requests + sim.requests.length + stream.stats.delivered',
    '  if (n < 0) sim.reset()',
    '  await sim.close()',
    '}',
    ''
  ].join('\n'))
  // The three programs share what they parse (lib, @types/node, the package's
  // declarations), each file once per form it is read in: a third of the time.
  const parsed = new Map<string, ts.SourceFile | undefined>()
  for (const moduleResolution of ['node10', 'node16', 'bundler'] as const) {
    const options: ts.CompilerOptions = {
      noEmit: true,
      strict: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [join(root, 'node_modules', '@types')],
      module: moduleResolution === 'node10' ? ts.ModuleKind.CommonJS : moduleResolution === 'node16' ? ts.ModuleKind.Node16 : ts.ModuleKind.Preserve,
      moduleResolution: moduleResolution === 'node10' ? ts.ModuleResolutionKind.Node10 : moduleResolution === 'node16' ? ts.ModuleResolutionKind.Node16 : ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget.ES2022,
      // The ES2022 library, not the default one that adds the DOM's: an app on Node, and less to parse and bind.
      lib: ['lib.es2022.d.ts']
    }
    const host = ts.createCompilerHost(options)
    const read = host.getSourceFile.bind(host)
    host.getSourceFile = (file, form, ...rest) => {
      const key = `${file}\0${typeof form === 'object' ? `${form.languageVersion}:${String(form.impliedNodeFormat)}` : form}`
      if (!parsed.has(key)) parsed.set(key, read(file, form, ...rest))
      return parsed.get(key)
    }
    const program = ts.createProgram([join(app, 'app.ts')], options, host)
    const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    t.same(errors, [], `moduleResolution ${moduleResolution}: no errors`)
  }
})

t.test('a consumer install: the packed tarball with pino, without ioredis', async (t) => {
  // Outside the repository: no node_modules above it to fall back on.
  const app = mkdtempSync(join(tmpdir(), 'pino-bitrix24-consumer-'))
  t.teardown(() => rmSync(app, { recursive: true, force: true }))
  const tarball = pack()
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  // From npm's cache when it holds them (npm ci filled it), else from the registry.
  execFileSync(...untracked(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball.path, 'pino']), { cwd: app, encoding: 'utf8', env: npmEnv })
  t.ok(existsSync(join(app, 'node_modules', 'pino-bitrix24-workflow', 'dist', 'index.js')), 'installed')
  t.notOk(existsSync(join(app, 'node_modules', 'ioredis')), 'no ioredis: it is an optional peer dependency')
  const own = ['undici']
  for (const name of own) t.ok(existsSync(join(app, 'node_modules', name)), `${name} installed`)

  const run = (code: string, env: Record<string, string> = {}) => {
    writeFileSync(join(app, 'app.js'), code)
    const child = spawnSync(...untracked(process.execPath, ['app.js']), { cwd: app, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH ?? '', ...env } })
    return { code: child.status, stderr: child.stderr }
  }
  // The first thing a newcomer may try; a hang would end in the timeout's kill (status null).
  const bare = run("require('pino').transport({ target: 'pino-bitrix24-workflow', options: { apiKey: 'k' } })\n")
  t.equal(bare.code, 0, `a transport without a logger lets the process exit ${bare.stderr}`)
  t.equal(bare.stderr, '')

  const redis = run([
    "const pino = require('pino')",
    "pino(pino.transport({ target: 'pino-bitrix24-workflow', options: { apiKey: 'vibe_api_test_key', baseUrl: 'http://127.0.0.1:9', redisUrl: 'redis://:hunter2@127.0.0.1:6379' } }))",
    ''
  ].join('\n'))
  t.equal(redis.code, 0)
  t.equal(redis.stderr, 'pino-bitrix24-workflow: ERR_BITRIX24_MISSING_PACKAGE: option "redisUrl" needs the package ioredis (npm install ioredis); until then each process paces itself\n', 'one coded line naming the package')
  const inProcess = run([
    "require('pino-bitrix24-workflow').build({ apiKey: 'vibe_api_test_key', redisUrl: 'redis://127.0.0.1:6379' })",
    '  .catch((err) => { console.error(err.code); process.exitCode = 3 })',
    ''
  ].join('\n'))
  t.same(inProcess, { code: 3, stderr: 'ERR_BITRIX24_MISSING_PACKAGE\n' }, 'in-process: a coded error')
})
