import type { Key } from './spool-store'

/**
 * One token queue in the spool, as bookkeeping: its chunks (lines read in one
 * flush window, written as one store record) and the sequence ranges already
 * settled. Sequence numbers are the queue's `pushed` count at each line's push.
 */

/**
 * Lines of one token read in one flush window: written as one record, and
 * removed once every line in it is settled. A line settled before its window
 * is written never reaches the disk.
 */
export interface Chunk {
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
export interface Rec {
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
  /** Waits for the next flush. */
  touched: boolean
}

/** The record a token's chunks are read with: epoch, last sent line, settled ranges, extra state. */
export interface TokenRecord {
  e?: number
  s?: number
  d?: Array<[number, number]>
  x?: unknown
}

export function newRec (token: string, epoch: number): Rec {
  return { token, epoch, chunks: [], open: undefined, settled: [], sent: 0, gone: false, touched: false }
}

/** Starts a chunk at sequence number `first`; it gathers the token's next lines. */
export function openChunk (rec: Rec, first: number, now: number, texts: string[], returnValues: Record<string, unknown> | undefined): Chunk {
  const chunk: Chunk = { first, n: 0, live: 0, bytes: 0, time: now, texts, returnValues, written: false }
  rec.chunks.push(chunk)
  rec.open = chunk
  return chunk
}

/** A line of `size` bytes (its text and its share of key and encoding) joined the chunk. */
export function addLine (chunk: Chunk, size: number): void {
  chunk.n++
  chunk.live++
  chunk.bytes += size
}

/** Adds [from, to] to sorted, disjoint ranges, merging neighbours. */
export function addRange (ranges: Array<[number, number]>, from: number, to: number): void {
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

export function inRanges (ranges: Array<[number, number]> | undefined, seq: number): boolean {
  return ranges?.some(([from, to]) => seq >= from && seq <= to) === true
}

/**
 * Lines `first` … `first + n - 1` are settled: recorded, and subtracted from
 * the chunks holding them; `drop(i)` removes chunk `i`, whose lines are all
 * settled. Settling a line twice counts once: delivery settles the lines the
 * row budget left out when it leaves them out, and again with the entry around them.
 */
/** How many of lines `first` … `last` the record holds unsettled: in its chunks, in no settled range. */
export function liveIn (rec: Rec, first: number, last: number): number {
  let held = 0
  for (const chunk of rec.chunks) {
    const from = Math.max(first, chunk.first)
    const to = Math.min(last, chunk.first + chunk.n - 1)
    if (from > to) continue
    held += to - from + 1
    // The ranges are disjoint: each settled line is taken off once.
    for (const [a, b] of rec.settled) held -= Math.max(0, Math.min(b, to) - Math.max(a, from) + 1)
  }
  return held
}

export function settleLines (rec: Rec, first: number, n: number, drop: (i: number) => void): void {
  if (n <= 0) return
  const last = first + n - 1
  for (const [from, to] of unsettled(rec.settled, first, last)) subtract(rec, from, to, drop)
  addRange(rec.settled, first, last)
}

/** The parts of [first, last] in none of the ranges. */
function unsettled (ranges: Array<[number, number]>, first: number, last: number): Array<[number, number]> {
  const parts: Array<[number, number]> = []
  let at = first
  for (const [from, to] of ranges) {
    if (to < at) continue
    if (from > last) break
    if (from > at) parts.push([at, from - 1])
    at = to + 1
  }
  if (at <= last) parts.push([at, last])
  return parts
}

function subtract (rec: Rec, first: number, last: number, drop: (i: number) => void): void {
  const chunks = rec.chunks
  for (let i = 0; i < chunks.length;) {
    const chunk = chunks[i] as Chunk
    if (chunk.first > last) break
    const end = chunk.first + chunk.n - 1
    if (end >= first) chunk.live -= Math.min(end, last) - Math.max(chunk.first, first) + 1
    if (chunk.live === 0) drop(i)
    else i++
  }
}

/** The record of a token with nothing spooled: its state alone (undefined: remove it). */
export function stateRecord (state: unknown): TokenRecord | undefined {
  return state === undefined ? undefined : { x: state }
}

/** The token record to write for a rec (undefined: remove it). */
export function tokenRecord (rec: Rec, state: unknown): TokenRecord | undefined {
  if (rec.gone) return stateRecord(state)
  // Only ranges at or past its oldest chunk still matter.
  const oldest = (rec.chunks[0] as Chunk).first
  while (rec.settled.length > 0 && (rec.settled[0] as [number, number])[1] < oldest) rec.settled.shift()
  return { e: rec.epoch, s: rec.sent, d: rec.settled, x: state }
}

/**
 * The chunks not yet written (the newest: the open one, and a completion's),
 * as store entries; from now on they count as written and keep no text in memory.
 */
export function takeUnwritten (rec: Rec): Array<[Key, unknown]> {
  let i = rec.chunks.length
  while (i > 0 && !(rec.chunks[i - 1] as Chunk).written) i--
  const out: Array<[Key, unknown]> = []
  for (const chunk of rec.chunks.slice(i)) {
    out.push([[rec.token, rec.epoch, chunk.first], chunk.returnValues === undefined ? [chunk.time, chunk.texts] : [chunk.time, chunk.texts, chunk.returnValues]])
    chunk.written = true
    chunk.texts = undefined
  }
  rec.open = undefined
  return out
}
