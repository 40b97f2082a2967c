import { existsSync, mkdirSync, rename, rmSync, statfsSync } from 'node:fs'
import type { Server } from 'node:net'
import { join } from 'node:path'
import { getSystemErrorName } from 'node:util'
import type { Bitrix24TransportError } from './errors'
import type { Config } from './options'
import { adoptOrphans, holdLock, newId, releaseLock, SPOOL_SUFFIX } from './spool-owner'
import { type Db, type Key, type Lmdb, loadStore, openStore, probeStore, type Root } from './spool-store'
import type { Stats } from './stats'
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

/**
 * Lines of one token read in one flush window: written as one record, and
 * removed once every line in it is settled. A line settled before its window
 * is written never reaches the disk.
 */
interface Chunk {
  /** Sequence number of its first line. */
  first: number
  n: number
  /** Lines not yet settled. */
  live: number
  bytes: number
  time: number
  /** The texts until it is written. */
  texts: string[] | undefined
  returnValues: Record<string, unknown> | undefined
  written: boolean
}

/** One token queue in the spool. */
interface Rec {
  token: string
  epoch: number
  /** Oldest first; the last one may still be open (gathering). */
  chunks: Chunk[]
  open: Chunk | undefined
  /** Settled sequence numbers as sorted, disjoint [from, to] ranges: what the next start must skip. */
  settled: Array<[number, number]>
  /** The last line of the request in flight: lines up to it may have landed. */
  sent: number
  /** Has nothing left in the spool. */
  gone: boolean
  /** Waits in `touched` for the next flush. */
  touched: boolean
}

/** The record a token's chunks are read with: epoch, last sent line, settled ranges, extra state. */
interface TokenRecord {
  e?: number
  s?: number
  d?: Array<[number, number]>
  x?: unknown
}

/** Adds [from, to] to sorted, disjoint ranges, merging neighbours. */
function addRange (ranges: Array<[number, number]>, from: number, to: number): void {
  let i = ranges.length
  // Settling goes mostly in order: the new range usually belongs at the end.
  while (i > 0 && (ranges[i - 1] as [number, number])[0] > from) i--
  ranges.splice(i, 0, [from, to])
  const merged: Array<[number, number]> = []
  for (const range of ranges) {
    const last = merged[merged.length - 1]
    if (last !== undefined && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1])
    else merged.push([range[0], range[1]])
  }
  ranges.length = 0
  ranges.push(...merged)
}

function inRanges (ranges: Array<[number, number]> | undefined, seq: number): boolean {
  return ranges?.some(([from, to]) => seq >= from && seq <= to) === true
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
  private readonly maxBytes: number
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
    this.maxBytes = config.spoolMaxBytes
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
    if (chunk === undefined) chunk = this.openChunk(rec, queue.pushed, now, [], undefined)
    ;(chunk.texts as string[]).push(text)
    this.count(chunk, bytes)
  }

  completion (queue: TokenQueue, text: string, bytes: number, returnValues: Record<string, unknown>, now: number): void {
    if (this.failed) return
    const rec = this.recOf(queue)
    // Its own record, after the lines: nothing follows a completion.
    this.count(this.openChunk(rec, queue.pushed, now, [text], returnValues), bytes)
    rec.open = undefined
  }

  private recOf (queue: TokenQueue): Rec {
    let rec = this.recs.get(queue)
    if (rec === undefined) {
      rec = { token: queue.token, epoch: ++this.epochs, chunks: [], open: undefined, settled: [], sent: 0, gone: false, touched: false }
      this.recs.set(queue, rec)
      this.byToken.set(queue.token, rec)
    }
    return rec
  }

  private openChunk (rec: Rec, first: number, now: number, texts: string[], returnValues: Record<string, unknown> | undefined): Chunk {
    const chunk: Chunk = { first, n: 0, live: 0, bytes: 0, time: now, texts, returnValues, written: false }
    rec.chunks.push(chunk)
    rec.open = chunk
    this.touch(rec)
    return chunk
  }

  private count (chunk: Chunk, bytes: number): void {
    const size = bytes + LINE_OVERHEAD
    chunk.n++
    chunk.live++
    chunk.bytes += size
    this.bytes += size
    this.pendingBytes += size
    this.puts++
    if (this.bytes > this.maxBytes) this.shrink()
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
    const last = first + n - 1
    addRange(rec.settled, first, last)
    const chunks = rec.chunks
    for (let i = 0; i < chunks.length;) {
      const chunk = chunks[i] as Chunk
      if (chunk.first > last) break
      const end = chunk.first + chunk.n - 1
      if (end >= first) chunk.live -= Math.min(end, last) - Math.max(chunk.first, first) + 1
      if (chunk.live === 0) this.dropChunk(rec, i)
      else i++
    }
    this.touch(rec)
    if (chunks.length === 0) this.forget(queue, rec)
  }

  /**
   * Keeps a small per-token state with the token's record (for example the
   * rows a workflow has used), restored by the next start as RecoveredToken.state.
   */
  setState (token: string, state: unknown): void {
    if (this.failed) return
    this.states.set(token, state)
    const rec = this.byToken.get(token)
    if (rec !== undefined) this.touch(rec)
    else {
      this.stateOnly.add(token)
      this.arm()
    }
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
    const low = this.maxBytes * LOW_WATER
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
      this.warn(`the disk spool is over spoolMaxBytes (${this.maxBytes}); its oldest lines are kept in memory only (counted as unspooled) and would be lost in a crash`)
    }
  }

  private touch (rec: Rec): void {
    if (!rec.touched) {
      rec.touched = true
      this.touched.push(rec)
    }
    this.arm()
  }

  private arm (): void {
    if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(() => { this.flush() }, SPOOL_FLUSH_MS)
      // In-process, the spool must not keep the application alive.
      this.timer.unref()
    }
  }

  /** The token record to write for a rec (undefined: remove it). */
  private record (rec: Rec): TokenRecord | undefined {
    const state = this.states.get(rec.token)
    if (rec.gone) return state === undefined ? undefined : { x: state }
    // Only ranges at or past its oldest chunk still matter.
    const oldest = (rec.chunks[0] as Chunk).first
    while (rec.settled.length > 0 && (rec.settled[0] as [number, number])[1] < oldest) rec.settled.shift()
    return { e: rec.epoch, s: rec.sent, d: rec.settled, x: state }
  }

  /** Writes what is pending in one transaction; resolves once it is committed (or failed). */
  flush (): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    if (this.failed || (this.touched.length === 0 && this.removals.length === 0 && this.stateOnly.size === 0)) return this.writing
    // A full disk is told here, as one clear line, before lmdb meets ENOSPC (which it also prints itself).
    const free = freeBytes(this.dir)
    if (!existsSync(this.path)) {
      this.fail('its file was deleted')
      return this.writing
    }
    if (free < this.pendingBytes * 2 + this.touched.length * PAGE + DISK_MARGIN) {
      this.fail(`the disk is full: ${free} bytes free`)
      return this.writing
    }
    const chunks: Array<[Key, unknown]> = []
    const records: Array<[string, TokenRecord | undefined]> = []
    for (const rec of this.touched) {
      rec.touched = false
      // The chunks not yet written are the newest: the open one, and a completion's.
      let i = rec.chunks.length
      while (i > 0 && !(rec.chunks[i - 1] as Chunk).written) i--
      for (const chunk of rec.chunks.slice(i)) {
        chunks.push([[rec.token, rec.epoch, chunk.first], chunk.returnValues === undefined ? [chunk.time, chunk.texts] : [chunk.time, chunk.texts, chunk.returnValues]])
        chunk.written = true
        // Written: the spool keeps no text in memory.
        chunk.texts = undefined
      }
      rec.open = undefined
      records.push([rec.token, this.record(rec)])
    }
    // States of tokens with nothing spooled.
    for (const token of this.stateOnly) if (!this.byToken.has(token)) records.push([token, { x: this.states.get(token) }])
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
      const records = new Map<string, TokenRecord>()
      for (const { key, value } of store.tokens.getRange()) records.set(key as unknown as string, value as TokenRecord)
      for (const { key, value } of store.lines.getRange()) {
        const [token, epoch, first] = key as [string, number, number]
        const [time, texts, returnValues] = value as [number, string[], Record<string, unknown> | undefined]
        const record = records.get(token)
        let rec = byToken.get(token)
        if (rec === undefined) {
          rec = { token, lines: [], completion: undefined, possiblyLanded: false, state: record?.x }
          byToken.set(token, rec)
        }
        // The record speaks of its epoch only; lines of an older one are all replayed (at least once).
        const current = record?.e === epoch
        let live = 0
        for (let i = 0; i < texts.length; i++) {
          const seq = first + i
          if (current && inRanges((record as TokenRecord).d, seq)) continue
          live++
          if (current && seq <= ((record as TokenRecord).s as number)) rec.possiblyLanded = true
          if (now - time > maxAge) continue
          if (returnValues === undefined) {
            rec.lines.push(texts[i] as string)
            recovered.lines++
          } else {
            rec.completion = { text: texts[i] as string, returnValues }
            recovered.completions++
          }
        }
        if (live > 0 && now - time > maxAge) {
          let gone = expired.get(token)
          if (gone === undefined) expired.set(token, gone = { token, lines: 0, completion: false })
          if (returnValues === undefined) gone.lines += live
          else gone.completion = true
        }
      }
      for (const [token, record] of records) {
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
    return { ...opened, error: undefined, close: async () => { await opened.spool?.close() } }
  } catch (err) {
    // loadStore throws only its coded error.
    return { ...NO_SPOOL, error: err as Bitrix24TransportError }
  }
}
