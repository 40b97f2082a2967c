import { execFile } from 'node:child_process'
import { getSystemErrorName } from 'node:util'
import { Bitrix24TransportError, ERR_MISSING_PACKAGE } from './errors'
import { PREFIX } from './prefix'

// The embedded store behind the spool: lmdb (an optional peer dependency),
// loaded only when spoolDir is set. Only the few calls the spool makes are
// typed here, so that the package compiles and runs without lmdb installed.

export type Key = string | Array<string | number>

export interface Db {
  putSync: (key: Key, value: unknown) => unknown
  removeSync: (key: Key) => unknown
  getRange: (options?: object) => Iterable<{ key: Key, value: unknown }>
  /** One asynchronous write transaction: the action runs in it, the promise settles with its commit. */
  transaction: (action: () => void) => Promise<unknown>
  close: () => Promise<void>
}

export interface Root extends Db {
  openDB: (options: { name: string }) => Db
}

export interface Lmdb {
  open: (options: { path: string, maxDbs: number, overlappingSync: boolean }) => Root
}

/** The package the spool needs; named by the error when missing. */
export const STORE_PACKAGE = 'lmdb'

/**
 * Loads lmdb, or throws a coded error that names the package and how to get
 * it. `load` is replaceable for tests; a child process without lmdb proves the
 * real path (test/spool-missing.test.ts).
 */
export function loadStore (load: (name: string) => unknown = require): Lmdb {
  try {
    return load(STORE_PACKAGE) as Lmdb
  } catch (err) {
    throw new Bitrix24TransportError(
      ERR_MISSING_PACKAGE,
      // The fix before the cause: the disabled line (200 characters) cuts from the end.
      `${PREFIX}option "spoolDir" needs the package "${STORE_PACKAGE}": npm install ${STORE_PACKAGE} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'spoolDir'
    )
  }
}

/** Opens a spool file: its `lines` and `tokens` databases. */
export function openStore (lmdb: Lmdb, path: string): { root: Root, lines: Db, tokens: Db } {
  const root = lmdb.open({ path, maxDbs: 2, overlappingSync: false })
  return { root, lines: root.openDB({ name: 'lines' }), tokens: root.openDB({ name: 'tokens' }) }
}

// Reads every record of a spool file, in a child process.
const PROBE = `const lmdb = require(process.argv[1])
const root = lmdb.open({ path: process.argv[2], maxDbs: 2 })
for (const name of ['lines', 'tokens']) for (const record of root.openDB({ name }).getRange()) void record
root.close().then(() => process.exit(0))`
// A healthy file of spoolMaxBytes reads in well under this.
const PROBE_TIMEOUT = 60_000

/**
 * Whether a spool file left by another process can be read: lmdb trusts its
 * file, and a damaged one (a torn copy, a stray file) crashes the process that
 * opens it (SIGSEGV) rather than throwing. So a file this process did not
 * write is read first in a child process; resolves undefined when it read
 * cleanly, else what went wrong.
 */
export function probeStore (path: string, locate: (name: string) => string = require.resolve): Promise<string | undefined> {
  const lmdb = locate(STORE_PACKAGE)
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', PROBE, lmdb, path], { timeout: PROBE_TIMEOUT, env: {} }, (err) => {
      const failed = err as (Error & { code?: number | string, signal?: string }) | null
      // A signal (SIGSEGV), or the exit code of an error lmdb threw.
      resolve(failed === null ? undefined : [failed.signal, failed.code].filter((part) => part != null).join(' '))
    })
  })
}

/** An error as a stderr line shows it: its code (lmdb gives a bare errno number), else its message. */
export function describeError (err: unknown): string {
  const e = err as Error & { code?: string | number }
  if (typeof e.code === 'number') return getSystemErrorName(-e.code)
  return e.code ?? e.message
}
