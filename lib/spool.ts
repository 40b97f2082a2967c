import { existsSync, mkdirSync, rmSync, statfsSync } from 'node:fs'
import type { Server } from 'node:net'
import { join } from 'node:path'
import type { Bitrix24TransportError } from './errors'
import type { Config } from './options'
import { adoptOrphans, holdLock, MAX_ADOPTED_FILES, newId, releaseLock, SPOOL_SUFFIX } from './spool-owner'
import { addLine, type Chunk, liveIn, newRec, openChunk, type Rec, settleLines, stateRecord, takeUnwritten, type TokenRecord, tokenRecord } from './spool-record'
import { readSpools, type Recovered } from './spool-read'
import { type Db, describeError, type Key, type Lmdb, loadStore, openStore, type Root } from './spool-store'
import { count, type Stats } from './stats'
import type { TokenQueue } from './token-queue'

// Writes reach the store at most this long after the line was read; the
// reading path itself only appends to an array.
export const SPOOL_FLUSH_MS = 100
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

/**
 * Why a write of about `needed` bytes cannot go, if it cannot. A full disk is
 * told as one clear line before lmdb meets ENOSPC (which it also prints itself).
 */
function cannotWrite (dir: string, path: string, needed: number): string | undefined {
  const free = freeBytes(dir)
  if (!existsSync(path)) return 'its file was deleted'
  if (free < needed) return `the disk is full: ${free} bytes free`
  return undefined
}

/** What a failed commit says: lmdb rejects each write with a generic error, and the cause, later, through its commitError. */
async function commitFault (err: unknown): Promise<string> {
  const cause = (err as { commitError?: Promise<unknown> }).commitError
  if (cause === undefined) return describeError(err)
  return await cause.then(() => describeError(err), (reason: unknown) => describeError(reason))
}

/** What delivery tells the spool. Sequence numbers are a queue's `pushed` count at the line's push. */
export interface SpoolHooks {
  /** Whether it still keeps lines; false once a fault switched it off. */
  readonly active: boolean
  /** A line was queued as sequence number `queue.pushed`. */
  line: (queue: TokenQueue, text: string, bytes: number, now: number) => void
  /** The completion was queued as sequence number `queue.pushed`. */
  completion: (queue: TokenQueue, text: string, bytes: number, returnValues: Record<string, unknown>, now: number) => void
  /** A request carrying lines up to `last` is going out: they may land from now on. */
  sent: (queue: TokenQueue, last: number) => void
  /** Lines `first` … `first + n - 1` are settled: delivered, or dropped for good. */
  settled: (queue: TokenQueue, first: number, n: number) => void
  /** Keeps a small per-token state (the rows a workflow used) for the next start; undefined removes it. */
  setState: (token: string, state: unknown) => void
  /** How many of lines `first` … `first + n - 1` it holds unsettled: what the next start sends of them. */
  keeps: (queue: TokenQueue, first: number, n: number) => number
}

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
  private readonly config: Config
  private readonly stats: Stats
  private readonly warn: (text: string) => void
  private readonly server: Server
  /** Recs with something to write; chunk keys to remove. */
  private touched: Rec[] = []
  private removals: Key[] = []
  private puts = 0
  /** Bytes of the lines not yet written. */
  private pendingBytes = 0
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private writing: Promise<void> = Promise.resolve()
  private readonly recs = new Map<TokenQueue, Rec>()
  private readonly byToken = new Map<string, Rec>()
  private readonly states = new Map<string, unknown>()
  private readonly stateOnly = new Set<string>()
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
    this.config = config
    this.stats = stats
    this.warn = warn
  }

  /** Whether it still writes; false once a fault switched it off. */
  get active (): boolean {
    return !this.failed && !this.closed
  }

  /** The reading path: appends to the token's open chunk, nothing more. */
  line (queue: TokenQueue, text: string, bytes: number, now: number): void {
    if (this.failed) return
    const rec = this.recOf(queue)
    let chunk = rec.open
    if (chunk === undefined) chunk = openChunk(this.touch(rec), queue.pushed, now, [], undefined)
    ;(chunk.texts as string[]).push(text)
    this.count(chunk, bytes)
  }

  completion (queue: TokenQueue, text: string, bytes: number, returnValues: Record<string, unknown>, now: number): void {
    if (this.failed) return
    const rec = this.recOf(queue)
    // Its own record, after the lines: nothing follows a completion.
    this.count(openChunk(this.touch(rec), queue.pushed, now, [text], returnValues), bytes)
    rec.open = undefined
  }

  private recOf (queue: TokenQueue): Rec {
    let rec = this.recs.get(queue)
    if (rec === undefined) {
      rec = newRec(queue.token, ++this.epochs)
      this.recs.set(queue, rec)
      this.byToken.set(queue.token, rec)
    }
    return rec
  }

  private count (chunk: Chunk, bytes: number): void {
    const size = bytes + LINE_OVERHEAD
    addLine(chunk, size)
    this.bytes += size
    this.pendingBytes += size
    this.puts++
    if (this.bytes > this.config.spoolMaxBytes) this.shrink()
  }

  sent (queue: TokenQueue, last: number): void {
    const rec = this.recs.get(queue)
    if (rec === undefined || rec.sent === last || this.failed) return
    rec.sent = last
    this.touch(rec)
  }

  settled (queue: TokenQueue, first: number, n: number): void {
    const rec = this.recs.get(queue)
    if (rec === undefined || this.failed) return
    settleLines(rec, first, n, (i) => this.dropChunk(rec, i))
    this.touch(rec)
    if (rec.chunks.length === 0) this.forget(queue, rec)
  }

  keeps (queue: TokenQueue, first: number, n: number): number {
    const rec = this.recs.get(queue)
    return rec === undefined || this.failed ? 0 : liveIn(rec, first, first + n - 1)
  }

  /** Keeps a small per-token state (the rows a workflow used) for the next start, as RecoveredToken.state. */
  setState (token: string, state: unknown): void {
    if (this.failed || (state === undefined && !this.states.has(token))) return
    // Newest last, undefined removes: over maxTokens the oldest goes, as the row budget forgets it.
    this.states.delete(token)
    if (state !== undefined) this.states.set(token, state)
    const changed = this.states.size > this.config.maxTokens ? [token, this.states.keys().next().value as string] : [token]
    this.states.delete(changed[1] as string)
    for (const name of changed) {
      const rec = this.byToken.get(name)
      if (rec !== undefined) this.touch(rec)
      else this.stateOnly.add(name)
    }
    this.arm()
  }

  /** Removes chunk `i` of a rec: its unsettled lines are no longer kept on disk. */
  private dropChunk (rec: Rec, i: number): Chunk {
    const chunk = rec.chunks.splice(i, 1)[0] as Chunk
    this.bytes -= chunk.bytes
    if (chunk.written) this.removals.push([rec.token, rec.epoch, chunk.first])
    else this.pendingBytes -= chunk.bytes
    if (rec.open === chunk) rec.open = undefined
    return chunk
  }

  private forget (queue: TokenQueue, rec: Rec): void {
    rec.gone = true
    this.recs.delete(queue)
    if (this.byToken.get(rec.token) === rec) this.byToken.delete(rec.token)
    this.touch(rec)
  }

  /** Over spoolMaxBytes: the oldest chunks leave the spool; delivery still holds their lines in memory. */
  private shrink (): void {
    const low = this.config.spoolMaxBytes * LOW_WATER
    let gone = 0
    for (const [queue, rec] of this.recs) {
      while (rec.chunks.length > 0 && this.bytes > low) gone += this.dropChunk(rec, 0).live
      this.touch(rec)
      if (rec.chunks.length === 0) this.forget(queue, rec)
      if (this.bytes <= low) break
    }
    this.stats.unspooled += gone
    if (!this.reportedFull) {
      this.reportedFull = true
      this.warn(`the disk spool is over spoolMaxBytes (${this.config.spoolMaxBytes}); its oldest lines are kept in memory only (counted as unspooled) and would be lost in a crash`)
    }
  }

  /** Marks the rec for the next flush; returns it. */
  private touch (rec: Rec): Rec {
    if (!rec.touched) {
      rec.touched = true
      this.touched.push(rec)
    }
    this.arm()
    return rec
  }

  private arm (): void {
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
    if (this.failed || (this.touched.length === 0 && this.removals.length === 0 && this.stateOnly.size === 0)) return this.writing
    const blocked = cannotWrite(this.dir, this.path, this.pendingBytes * 2 + this.touched.length * PAGE + DISK_MARGIN)
    if (blocked !== undefined) {
      this.fail(blocked)
      return this.writing
    }
    const chunks: Array<[Key, unknown]> = []
    const records: Array<[string, TokenRecord | undefined]> = []
    for (const rec of this.touched) {
      rec.touched = false
      chunks.push(...takeUnwritten(rec))
      records.push([rec.token, tokenRecord(rec, this.states.get(rec.token))])
    }
    // States of tokens with nothing spooled.
    for (const token of this.stateOnly) if (!this.byToken.has(token)) records.push([token, stateRecord(this.states.get(token))])
    const removals = this.removals
    const puts = this.puts
    this.touched = []
    this.removals = []
    this.stateOnly.clear()
    this.puts = 0
    this.pendingBytes = 0
    // lmdb commits transactions in order; each gets its handlers at once, so no rejection goes unhandled.
    this.writing = this.root.transaction(() => {
      for (const key of removals) this.lines.removeSync(key)
      for (const [key, value] of chunks) this.lines.putSync(key, value)
      for (const [token, value] of records) {
        if (value === undefined) this.tokens.removeSync(token)
        else this.tokens.putSync(token, value)
      }
    }).then(() => {
      if (this.failed) return
      this.stats.spooled += puts
      // What adopted spools held is now in this one: they can go.
      for (const path of this.adopted) removeSpoolFile(path)
      this.adopted = []
    }, (err: unknown) => commitFault(err).then((reason) => { this.fail(reason) }))
    return this.writing
  }

  /** A fault: one stderr line, then delivery goes on from memory. */
  fail (reason: string): void {
    if (this.failed) return
    this.failed = true
    this.touched = []
    this.removals = []
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
      if (this.recs.size === 0 && this.states.size === 0) removeSpoolFile(this.path)
    }
    releaseLock(this.server, this.dir, this.id)
  }
}

/** Removes a spool file and its lmdb lock file. */
export function removeSpoolFile (path: string): void {
  rmSync(path, { force: true })
  rmSync(path + '-lock', { force: true })
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
    // Bounded: each file is read in a child process, and what they hold goes into memory and into this spool (itself capped).
    const { adopted: paths, left } = await adoptOrphans(dir, id, { files: MAX_ADOPTED_FILES, bytes: config.spoolMaxBytes })
    if (left > 0) warn(`${count(left, 'spool', 'spools')} of ended processes left for the next start: one start takes at most ${MAX_ADOPTED_FILES} and spoolMaxBytes of them, oldest first`)
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

/** What the transport holds of the spool; nothing to do when spoolDir is unset or the spool could not start. */
export interface SpoolStart extends Opened {
  /** The store package is missing: the transport fails at start (in pino's worker: it is disabled). */
  error: Bitrix24TransportError | undefined
  /** After delivery closed: writes what is left and releases the lock. */
  close: () => Promise<void>
}

const NO_SPOOL: SpoolStart = Object.freeze({ spool: undefined, recovered: undefined, error: undefined, close: async () => {} })

/** openSpool for the transport, which must not branch on whether a store is installed. */
export async function startSpool (config: Config | undefined, stats: Stats, warn: (text: string) => void, now: number, load?: (name: string) => unknown): Promise<SpoolStart> {
  if (config?.spoolDir === undefined) return NO_SPOOL
  try {
    const opened = await openSpool(config, stats, warn, now, load)
    const spool = opened.spool
    // close holds the spool, not what was read back (opened.recovered), which the transport lets go once queued.
    return { ...opened, error: undefined, close: async () => { await spool?.close() } }
  } catch (err) {
    // loadStore throws only its coded error.
    return { ...NO_SPOOL, error: err as Bitrix24TransportError }
  }
}
