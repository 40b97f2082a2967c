import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { API_KEY } from './fixtures/harness'
import { untracked } from './fixtures/untracked'

// The store is an optional peer dependency: an app that never installed it
// gets, for spoolDir, a clear error naming the package, and nothing else
// changes. Proven in an app where lmdb cannot be found at all: the package is
// copied (not linked, so that it resolves its modules from the app), and every
// dependency but lmdb is linked in.

const root = resolve(__dirname, '..')

t.test('without lmdb installed, spoolDir gives a clear error naming the package; the app goes on', async (t) => {
  const app = mkdtempSync(join(tmpdir(), 'b24-nolmdb-'))
  t.teardown(() => rmSync(app, { recursive: true, force: true }))
  const modules = join(app, 'node_modules')
  const own = join(modules, 'pino-bitrix24-workflow')
  mkdirSync(own, { recursive: true })
  cpSync(join(root, 'package.json'), join(own, 'package.json'))
  cpSync(join(root, 'dist'), join(own, 'dist'), { recursive: true })
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name === 'lmdb' || name === '@lmdb' || name.startsWith('.')) continue
    symlinkSync(join(root, 'node_modules', name), join(modules, name), 'dir')
  }
  cpSync(join(__dirname, 'fixtures', 'apps', 'missing-store.js'), join(app, 'app.js'))
  const run = spawnSync(...untracked(process.execPath, ['app.js']), {
    cwd: app,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', BITRIX24_API_KEY: API_KEY, SPOOL_DIR: join(app, 'spool') }
  })
  t.equal(run.status, 0, run.stderr)
  t.equal(spawnSync(...untracked(process.execPath, ['-e', 'require.resolve("lmdb")']), { cwd: app }).status, 1, 'lmdb cannot be found from the app')
  // The whole line, uncut: the package, the fix, the cause and what it means for the app.
  t.equal(run.stderr, 'pino-bitrix24-workflow: ERR_BITRIX24_MISSING_PACKAGE: option "spoolDir" needs the package "lmdb": npm install lmdb (MODULE_NOT_FOUND); transport disabled, the app and its other targets go on\n')
  t.equal(run.stderr.trim().split('\n').length, 1, 'one stderr line')
  t.match(run.stdout, /^rejected ERR_BITRIX24_MISSING_PACKAGE spoolDir pino-bitrix24-workflow: option "spoolDir" needs the package "lmdb"/m, 'in-process, start-up rejects')
})
