import { existsSync, mkdirSync, rename, rmSync, statfsSync } from 'node:fs'
import type { Server } from 'node:net'
import { join } from 'node:path'
import { getSystemErrorName } from 'node:util'
import type { Config } from './options'
import { adoptOrphans, holdLock, newId, releaseLock, SPOOL_SUFFIX } from './spool-owner'
import { type Db, type Key, type Lmdb, loadStore, openStore, probeStore, type Root } from './spool-store'
import type { Stats } from './stats'
import type { TokenQueue } from './token-queue'

// Writes reach the store at most this long after the line was read; the
// reading path itself only appends to an array.
export const SPOOL_FLUSH_MS = 50
// Over spoolMaxBytes, lines leave the spool down to this share of it, so that
// a flood evicts in batches rather than once per line.
const LOW_WATER = 0.9
// What a spooled line costs besides its text: its key (token, epoch, seq) and encoding.
const LINE_OVERHEAD = 24
// Free space a write needs: twice its bytes, a page per record (lmdb copies
// each page it changes), and a margin for the tree's own pages.
const PAGE = 4096
const DISK_MARGIN = 256 * 1024

/** Bytes free for this user on the file system of `dir`; Infinity when it cannot be told. */
function freeBytes (dir: string): number {
  try {
    const fs = statfsSync(dir)
    return fs.bavail * fs.bsize
  } catch {
    return Infinity
  }
}

/** What delivery tells the spool. Sequence numbers are a queue's `pushed` count at the line's push. */
export interface SpoolHooks {
  /** A line was queued as sequence number `queue.pushed`. */
  line: (queue: TokenQueue, text: string, bytes: number, now: number) => void
  /** The completion was queued as sequence number `queue.pushed`. */
  completion: (queue: TokenQueue, text: string, bytes: number, returnValues: Record<string, unknown>, now: number) => void
  /** A request carrying lines up to `last` is going out: they may land from now on. */
  sent: (queue: TokenQueue, last: number) => void
  /** Lines `first` … `first + n - 1` are settled: delivered, or dropped for good. */
  settled: (queue: TokenQueue, first: number, n: number) => void
}

/** What a spool left for one token, in order. */
export interface RecoveredToken {
  token: string
  lines: string[]
  completion: { text: string, returnValues: Record<string, unknown> } | undefined
  /** A request carrying its first lines was in flight when the owner died: they may have landed. */
  possiblyLanded: boolean
  /** The generic per-token state last stored with setState, if any. */
  state: unknown
}

/** What the spools of earlier processes held. */
export interface Recovered {
  tokens: RecoveredToken[]
  lines: number
  completions: number
  /** Per token, lines and the completion older than spoolMaxAge, not replayed. */
  expired: Array<{ token: string, lines: number, completion: boolean }>
  /** Spool files read. */
  files: number
}

/** One token queue's lines in the spool: sizes[i] is the byte cost of sequence number base + i, 0 once gone. */
interface Rec {
  epoch: number
  base: number
  head: number
  sizes: number[]
  live: number
  sent: number
}

type Op = [Db, Key, unknown]

/**
 * A disk spool: every accepted line and completion is written (batched,
 * off the reading path) to this process's own lmdb file, and removed once
 * settled; what remains at exit, or at a crash, is replayed by the next
 * transport that starts with the same directory. A disk fault switches it
 * off with one stderr line; delivery goes on from memory.
 */
export class Spool implements SpoolHooks {
  readonly dir: string
  readonly id: string
  readonly path: string
  private readonly root: Root
  private readonly lines: Db
  private readonly tokens: Db
  private readonly maxBytes: number
  private readonly stats: Stats
  private readonly warn: (text: string) => void
  private readonly server: Server
  private ops: Op[] = []
  private puts = 0
  /** Bytes of the lines in `ops`. */
  private pendingBytes = 0
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private writing: Promise<void> = Promise.resolve()
  private readonly recs = new Map<TokenQueue, Rec>()
  private readonly states = new Map<string, unknown>()
  private epochs = 0
  private failed = false
  private closed = false
  private reportedFull = false
  /** Spool files adopted from dead owners, removed once what they held is in this one. */
  private adopted: string[]
  /** Estimated bytes of what the spool holds. */
  bytes = 0

  constructor (parts: { dir: string, id: string, lmdb: Lmdb, server: Server, adopted: string[] }, config: Config, stats: Stats, warn: (text: string) => void) {
    this.dir = parts.dir
    this.id = parts.id
    this.path = join(parts.dir, parts.id + SPOOL_SUFFIX)
    this.server = parts.server
    this.adopted = parts.adopted
    const store = openStore(parts.lmdb, this.path)
    this.root = store.root
    this.lines = store.lines
    this.tokens = store.tokens
    this.maxBytes = config.spoolMaxBytes
    this.stats = stats
    this.warn = warn
  }

  /** Whether it still writes; false once a fault switched it off. */
  get active (): boolean {
    return !this.failed && !this.closed
  }

  line (queue: TokenQueue, text: string, bytes: number, now: number): void {
    if (this.failed) return
    this.put(queue, [now, text], bytes)
  }

  completion (queue: TokenQueue, text: string, bytes: number, returnValues: Record<string, unknown>, now: number): void {
    if (this.failed) return
    this.put(queue, [now, text, returnValues], bytes)
  }

  private put (queue: TokenQueue, value: unknown[], bytes: number): void {
    const seq = queue.pushed
    let rec = this.recs.get(queue)
    if (rec === undefined) {
      rec = { epoch: ++this.epochs, base: seq, head: 0, sizes: [], live: 0, sent: 0 }
      this.recs.set(queue, rec)
    }
    const size = bytes + queue.token.length + LINE_OVERHEAD
    rec.sizes.push(size)
    rec.live++
    this.bytes += size
    this.write(this.lines, [queue.token, rec.epoch, seq], value)
    this.puts++
    this.pendingBytes += size
    if (this.bytes > this.maxBytes) this.shrink()
  }

  sent (queue: TokenQueue, last: number): void {
    const rec = this.recs.get(queue)
    if (rec === undefined || rec.sent === last || this.failed) return
    rec.sent = last
    this.write(this.tokens, queue.token, { s: [rec.epoch, last], x: this.states.get(queue.token) })
  }

  settled (queue: TokenQueue, first: number, n: number): void {
    const rec = this.recs.get(queue)
    if (rec === undefined || this.failed) return
    const from = Math.max(first - rec.base, rec.head)
    const to = Math.min(first + n - rec.base, rec.sizes.length)
    for (let i = from; i < to; i++) this.unspool(queue, rec, i)
    this.advance(queue, rec)
  }

  /**
   * Keeps a small per-token state with the token's record (for example the
   * rows a workflow has used), restored by the next start as RecoveredToken.state.
   */
  setState (token: string, state: unknown): void {
    if (this.failed) return
    this.states.set(token, state)
    let sent: Key | undefined
    for (const [queue, rec] of this.recs) if (queue.token === token && rec.sent > 0) sent = [rec.epoch, rec.sent]
    this.write(this.tokens, token, { s: sent, x: state })
  }

  private unspool (queue: TokenQueue, rec: Rec, i: number): boolean {
    const size = rec.sizes[i] as number
    if (size === 0) return false
    rec.sizes[i] = 0
    rec.live--
    this.bytes -= size
    this.write(this.lines, [queue.token, rec.epoch, rec.base + i], undefined)
    return true
  }

  /** Moves past lines gone from the front; forgets a queue with nothing left in the spool. */
  private advance (queue: TokenQueue, rec: Rec): void {
    while (rec.head < rec.sizes.length && rec.sizes[rec.head] === 0) rec.head++
    if (rec.live > 0) {
      if (rec.head > 1024 && rec.head * 2 > rec.sizes.length) {
        rec.sizes = rec.sizes.slice(rec.head)
        rec.base += rec.head
        rec.head = 0
      }
      return
    }
    this.recs.delete(queue)
    if (rec.sent > 0) {
      const state = this.states.get(queue.token)
      this.write(this.tokens, queue.token, state === undefined ? undefined : { x: state })
    }
  }

  /** Over spoolMaxBytes: the oldest lines leave the spool; delivery still holds them in memory. */
  private shrink (): void {
    const low = this.maxBytes * LOW_WATER
    let gone = 0
    for (const [queue, rec] of this.recs) {
      for (let i = rec.head; i < rec.sizes.length && this.bytes > low; i++) if (this.unspool(queue, rec, i)) gone++
      this.advance(queue, rec)
      if (this.bytes <= low) break
    }
    this.stats.unspooled += gone
    if (!this.reportedFull) {
      this.reportedFull = true
      this.warn(`the disk spool is over spoolMaxBytes (${this.maxBytes}); its oldest lines are kept in memory only (counted as unspooled) and would be lost in a crash`)
    }
  }

  private write (db: Db, key: Key, value: unknown): void {
    this.ops.push([db, key, value])
    if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(() => { this.flush() }, SPOOL_FLUSH_MS)
      // In-process, the spool must not keep the application alive.
      this.timer.unref()
    }
  }

  /** Writes what is pending in one transaction; resolves once it is committed (or failed). */
  flush (): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    if (this.failed || this.ops.length === 0) return this.writing
    // A full disk is told here, as one clear line, before lmdb meets ENOSPC (which it also prints itself).
    const free = freeBytes(this.dir)
    if (!existsSync(this.path)) {
      this.fail('its file was deleted')
      return this.writing
    }
    if (free < this.pendingBytes * 2 + this.ops.length * PAGE + DISK_MARGIN) {
      this.fail(`the disk is full: ${free} bytes free`)
      return this.writing
    }
    this.pendingBytes = 0
    const ops = this.ops
    const puts = this.puts
    this.ops = []
    this.puts = 0
    // lmdb commits batches in order; each gets its handlers at once, so no rejection goes unhandled.
    this.writing = this.root.transaction(() => {
      for (const [db, key, value] of ops) {
        if (value === undefined) db.removeSync(key)
        else db.putSync(key, value)
      }
    }).then(() => {
      if (this.failed) return
      this.stats.spooled += puts
      // What adopted spools held is now in this one: they can go.
      for (const path of this.adopted) removeSpoolFile(path)
      this.adopted = []
    }, (err: unknown) => {
      // lmdb rejects each write with a generic error, and the cause, later, through its commitError.
      const cause = (err as { commitError?: Promise<unknown> }).commitError
      if (cause === undefined) return this.fail(describeError(err))
      return cause.then(() => this.fail(describeError(err)), (reason: unknown) => this.fail(describeError(reason)))
    })
    return this.writing
  }

  /** A fault: one stderr line, then delivery goes on from memory. */
  fail (reason: string): void {
    if (this.failed) return
    this.failed = true
    this.ops = []
    this.recs.clear()
    this.warn(`the disk spool ${this.path} failed (${reason}); lines are kept in memory only from now on and would be lost in a crash`)
    this.root.close().catch(() => {})
  }

  /**
   * At close, after delivery closed: writes what is pending, and removes the
   * spool when nothing unsettled is left in it; otherwise it stays for the
   * next start. Then the lock is released, which makes it adoptable.
   */
  async close (): Promise<void> {
    if (this.closed) return
    await this.flush()
    this.closed = true
    if (!this.failed) {
      await this.root.close().catch(() => {})
      if (this.recs.size === 0) removeSpoolFile(this.path)
    }
    releaseLock(this.server, this.dir, this.id)
  }
}

/** Removes a spool file and its lmdb lock file. */
export function removeSpoolFile (path: string): void {
  rmSync(path, { force: true })
  rmSync(path + '-lock', { force: true })
}

/** An error as a stderr line shows it: its code (lmdb gives a bare errno number), else its message. */
function describeError (err: unknown): string {
  const e = err as Error & { code?: string | number }
  if (typeof e.code === 'number') return getSystemErrorName(-e.code)
  return e.code ?? e.message
}

/**
 * Reads what earlier spools left, in key order (per token, oldest first), and
 * closes them; a file that cannot be read is moved aside as `<file>.corrupt`
 * with one stderr line. Lines older than spoolMaxAge are counted, not kept.
 */
export async function readSpools (lmdb: Lmdb, paths: string[], maxAge: number, now: number, warn: (text: string) => void): Promise<{ recovered: Recovered, readable: string[] }> {
  const byToken = new Map<string, RecoveredToken>()
  const recovered: Recovered = { tokens: [], lines: 0, completions: 0, expired: [], files: 0 }
  const readable: string[] = []
  const expired = new Map<string, Recovered['expired'][number]>()
  for (const path of paths) {
    let store
    try {
      const fault = await probeStore(path)
      if (fault !== undefined) throw new Error(`reading it crashed a test process: ${fault}`)
      store = openStore(lmdb, path)
      const sent = new Map<string, { s?: [number, number], x?: unknown }>()
      for (const { key, value } of store.tokens.getRange()) sent.set(key as unknown as string, value as { s?: [number, number], x?: unknown })
      for (const { key, value } of store.lines.getRange()) {
        const [token, epoch, seq] = key as [string, number, number]
        const [time, text, returnValues] = value as [number, string, Record<string, unknown> | undefined]
        let rec = byToken.get(token)
        if (rec === undefined) {
          const record = sent.get(token)
          rec = { token, lines: [], completion: undefined, possiblyLanded: false, state: record?.x }
          byToken.set(token, rec)
        }
        if (now - time > maxAge) {
          let gone = expired.get(token)
          if (gone === undefined) expired.set(token, gone = { token, lines: 0, completion: false })
          if (returnValues === undefined) gone.lines++
          else gone.completion = true
          continue
        }
        const s = sent.get(token)?.s
        if (s !== undefined && (epoch < s[0] || (epoch === s[0] && seq <= s[1]))) rec.possiblyLanded = true
        if (returnValues === undefined) {
          rec.lines.push(text)
          recovered.lines++
        } else {
          rec.completion = { text, returnValues }
          recovered.completions++
        }
      }
      for (const [token, record] of sent) {
        if (!byToken.has(token) && record.x !== undefined) byToken.set(token, { token, lines: [], completion: undefined, possiblyLanded: false, state: record.x })
      }
      recovered.files++
      readable.push(path)
    } catch (err) {
      const aside = path + '.corrupt'
      // Out of the way of the next start; if even that fails, the next start tries again.
      rename(path, aside, () => {})
      warn(`the spool file ${path} could not be read (${describeError(err)}); it was moved aside as ${aside} and is not replayed`)
    } finally {
      await store?.root.close().catch(() => {})
    }
  }
  recovered.tokens = [...byToken.values()]
  recovered.expired = [...expired.values()]
  return { recovered, readable }
}

/** What openSpool gives: the spool (undefined when it could not start) and what earlier processes left. */
export interface Opened {
  spool: Spool | undefined
  recovered: Recovered | undefined
}

/**
 * Starts the spool of config.spoolDir: loads lmdb (a coded error when it is
 * missing), takes its lock, adopts the spools of dead owners and reads them.
 * A disk fault gives one stderr line and no spool: delivery runs from memory.
 */
export async function openSpool (config: Config, stats: Stats, warn: (text: string) => void, now: number, load?: (name: string) => unknown): Promise<Opened> {
  const lmdb = loadStore(load)
  const dir = config.spoolDir as string
  const id = newId()
  let server: Server
  try {
    mkdirSync(dir, { recursive: true })
    server = await holdLock(dir, id)
  } catch (err) {
    warn(`the disk spool cannot start in ${dir} (${describeError(err)}); lines are kept in memory only and would be lost in a crash`)
    return { spool: undefined, recovered: undefined }
  }
  let adopted: string[] = []
  let recovered: Recovered | undefined
  try {
    const paths = await adoptOrphans(dir, id)
    if (paths.length > 0) {
      const read = await readSpools(lmdb, paths, config.spoolMaxAge, now, warn)
      recovered = read.recovered
      adopted = read.readable
    }
    return { spool: new Spool({ dir, id, lmdb, server, adopted }, config, stats, warn), recovered }
  } catch (err) {
    warn(`the disk spool cannot start in ${dir} (${describeError(err)}); lines are kept in memory only and would be lost in a crash`)
    releaseLock(server, dir, id)
    return { spool: undefined, recovered }
  }
}
