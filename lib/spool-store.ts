import { Bitrix24TransportError, ERR_MISSING_PACKAGE } from './errors'

// The embedded store behind the spool: lmdb (an optional peer dependency),
// loaded only when spoolDir is set. Only the few calls the spool makes are
// typed here, so that the package compiles and runs without lmdb installed.

export type Key = string | Array<string | number>

export interface Db {
  put: (key: Key, value: unknown) => unknown
  remove: (key: Key) => unknown
  getRange: (options?: object) => Iterable<{ key: Key, value: unknown }>
  batch: (action: () => void) => Promise<unknown>
  close: () => Promise<void>
}

export interface Root extends Db {
  openDB: (options: { name: string }) => Db
}

export interface Lmdb {
  open: (options: { path: string, maxDbs: number }) => Root
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
      `pino-bitrix24-workflow: option "spoolDir" needs the package "${STORE_PACKAGE}", which could not be loaded (${(err as NodeJS.ErrnoException).code ?? 'error'}); install it next to pino-bitrix24-workflow: npm install ${STORE_PACKAGE}`,
      'spoolDir'
    )
  }
}

/** Opens a spool file: its `lines` and `tokens` databases. */
export function openStore (lmdb: Lmdb, path: string): { root: Root, lines: Db, tokens: Db } {
  const root = lmdb.open({ path, maxDbs: 2 })
  return { root, lines: root.openDB({ name: 'lines' }), tokens: root.openDB({ name: 'tokens' }) }
}
