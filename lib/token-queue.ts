import { type Batch, ChunkPool } from './chunk-pool'
import type { RowState } from './row-budget'

/**
 * What one request carries for one token. Formed when the request can go (see
 * TokenQueue.take), and never changed afterwards: a retry resends this text.
 */
export interface Entry {
  /** Sequence number of its first line: the queue's `pushed` count when that line was queued. */
  first: number
  /** Sequence numbers it covers from `first`: its lines, and the lines left out between them (omitted). */
  span: number
  text: string
  bytes: number
  lines: number
  /** When its oldest line was queued. */
  since: number
  /** Failed attempts so far. */
  attempts: number
  /** Set for the entry that completes the activity. */
  returnValues: Record<string, unknown> | undefined
  /** Delivered or given up on; an answer that comes after is ignored. */
  settled: boolean
}

/**
 * Where a token stands. One request per token at a time keeps its lines in order.
 * - collecting: lines may wait here until the token is ready (flushInterval, a full entry, a flush);
 * - ready: waiting in the scheduler for a request slot;
 * - sending: a request is in flight;
 * - retryWait: an attempted entry waits for its retry.
 */
export type Phase = 'collecting' | 'ready' | 'sending' | 'retryWait'

/**
 * The count of bytes queued data holds in all, against maxBufferedBytes (MemoryBudget): each queue
 * adds and takes its own there, where its batches know their lines: each pending line with the
 * newline that will join it to the next, its completion, and its attempted entry.
 */
export interface HeldBytes {
  bytes: number
}

/** A completion waiting behind the token's lines. */
interface Completion {
  text: string
  bytes: number
  since: number
  returnValues: Record<string, unknown>
}

/**
 * flush() callers, each waiting until every line up to a sequence number is
 * delivered or given up on. Not a count of finished lines: newer lines can
 * finish before older ones (an overflow evicts pending lines while an older
 * entry is in flight), so a count would call back early.
 */
class Waiters {
  private list: Array<{ upTo: number, resolve: () => void }> = []

  add (upTo: number): Promise<void> {
    return new Promise((resolve) => { this.list.push({ upTo, resolve }) })
  }

  /** Resolves those waiting for lines below `low`, the oldest line not finished; whether any still wait. */
  reach (low: number): boolean {
    let i = 0
    while (i < this.list.length && (this.list[i] as { upTo: number }).upTo < low) (this.list[i++] as { resolve: () => void }).resolve()
    this.list = this.list.slice(i)
    return this.list.length > 0
  }
}

/**
 * Everything queued for one event token: its lines, oldest first, as given;
 * they become an entry only when `take` is called for a request that goes now,
 * so a token that must wait grows a fuller entry, never more entries.
 *
 * Pending lines are kept as full batches already joined (each what one entry
 * would take), then the lines still gathering into the next batch. Joining
 * early is storage only, not sealing: the entry is still formed when its
 * request can go, and a batch is exactly what `take` would form from those
 * lines. It keeps a long queue (a stalled server, a flood) as a few reused
 * buffers or flat strings (ChunkPool.seal) instead of thousands of strings
 * that V8 must promote and collect.
 */
export class TokenQueue {
  private state: Phase = 'collecting'
  /** Pending lines, oldest first: joined batches (see ChunkPool.seal), then the lines gathering into the next. */
  private batches: Batch[] = []
  private batchHead = 0
  private gathering: string[] = []
  private gatheringBytes = 0
  private gatheringSince = 0
  private lineCount = 0
  /** UTF-8 bytes of pending lines, without the newlines that will join them. */
  pendingBytes = 0
  private completion: Completion | undefined = undefined
  /** Its activity was completed through the stream: no more lines are taken. */
  closed = false
  /** The entry attempted and not settled: in flight, or waiting for its retry. */
  current: Entry | undefined = undefined
  /** Lines ever queued; lines gone from the pending queue (taken or dropped); lines delivered or given up on. */
  pushed = 0
  consumed = 0
  finished = 0
  /** Its rows (RowBudget), when maxRows is on: kept there, so that it outlives this queue. */
  rows: RowState | undefined = undefined
  private waiters: Waiters | undefined = undefined

  /** `maxBytes`: the most one entry may hold (maxEntryBytes); `pool`: buffers of maxBytes for its batches (default: none kept); `memory`: the count it holds its bytes in. */
  constructor (readonly token: string, private readonly maxBytes: number, private readonly pool = new ChunkPool(maxBytes, 0), private readonly memory: HeldBytes = { bytes: 0 }) {}

  /** The entry formed for a request is held until it is settled. */
  hold (entry: Entry): void {
    this.current = entry
    this.memory.bytes += entry.bytes
  }

  /** The attempted entry is done with (delivered or given up on): its bytes go. */
  release (entry: Entry): void {
    this.memory.bytes -= entry.bytes
    if (this.current === entry) this.current = undefined
  }

  /** Where the token stands, changed only by these steps (see Phase). */
  get phase (): Phase { return this.state }
  toReady (): void { this.state = 'ready' }
  toSending (): void { this.state = 'sending' }
  toCollecting (): void { this.state = 'collecting' }
  toRetryWait (): void { this.state = 'retryWait' }

  /** Resolves once every line queued so far is delivered or given up on. */
  settled (): Promise<void> {
    if (this.oldestUnfinished > this.pushed) return Promise.resolve()
    return (this.waiters ??= new Waiters()).add(this.pushed)
  }

  /**
   * The sequence number of the oldest line not yet delivered or given up on:
   * the attempted entry's first, else the oldest pending line's. Lines taken
   * out of the queue finish with their entry, those it left out (omitted) too.
   */
  private get oldestUnfinished (): number {
    return this.current?.first ?? this.consumed + 1
  }

  /** `n` more lines were delivered or given up on. */
  finish (n: number): void {
    this.finished += n
    if (this.waiters?.reach(this.oldestUnfinished) === false) this.waiters = undefined
  }

  get pendingLines (): number {
    return this.lineCount
  }

  /** Lines or a completion still to be sent (not counting the entry attempted). */
  get hasWork (): boolean {
    return this.lineCount > 0 || this.completion !== undefined
  }

  /** Nothing queued, nothing attempted: the token can be forgotten. */
  get idle (): boolean {
    return this.current === undefined && !this.hasWork
  }

  /** A completion waits behind the lines. */
  get completing (): boolean {
    return this.completion !== undefined
  }

  /** When the oldest thing still to be sent was queued. */
  get headSince (): number {
    if (this.batchHead < this.batches.length) return (this.batches[this.batchHead] as Batch).since
    return this.gathering.length > 0 ? this.gatheringSince : this.completion?.since ?? 0
  }

  /** Whether the oldest pending text fills an entry by itself. */
  get full (): boolean {
    return this.batchHead < this.batches.length || this.gatheringBytes + this.gathering.length - 1 >= this.maxBytes
  }

  /** Queues a line of `bytes` UTF-8 bytes. */
  push (text: string, bytes: number, now: number): void {
    const n = this.gathering.length
    if (n > 0 && this.gatheringBytes + n + bytes > this.maxBytes) this.seal()
    if (this.gathering.length === 0) this.gatheringSince = now
    this.gathering.push(text)
    this.gatheringBytes += bytes
    this.pendingBytes += bytes
    this.lineCount++
    this.pushed++
    this.memory.bytes += bytes + 1
  }

  /** The lines gathered so far become one batch (in a buffer or one flat string, see ChunkPool.seal). */
  private seal (): void {
    const lines = this.gathering
    this.batches.push(this.pool.seal(lines, this.gatheringBytes + lines.length - 1, this.gatheringSince))
    this.gathering = []
    this.gatheringBytes = 0
  }

  /** Queues the completion behind every line; it carries what lines fit in its own message. */
  complete (text: string, bytes: number, returnValues: Record<string, unknown>, now: number): void {
    this.completion = { text, bytes, since: now, returnValues }
    this.closed = true
    this.pushed++
    this.memory.bytes += bytes
  }

  /**
   * Forms the next entry: the oldest whole lines up to `cap` bytes joined by
   * newlines (at least one batch: a batch never exceeds maxBytes), or, once no
   * line is left, the completion. `text` is as queued; the caller cleans it.
   */
  take (cap = this.maxBytes): { text: string, bytes: number, lines: number, since: number, returnValues: Record<string, unknown> | undefined } | undefined {
    if (this.lineCount === 0) return this.takeCompletion()
    const first = this.shift() as Batch
    let next = this.headBytes
    if (next === 0 || first.bytes + 1 + next > cap) return { text: this.pool.text(first), bytes: first.bytes, lines: first.lines, since: first.since, returnValues: undefined }
    // Rows run short: several batches make one larger entry.
    const texts = [this.pool.text(first)]
    let bytes = first.bytes
    let lines = first.lines
    while (next !== 0 && bytes + 1 + next <= cap) {
      const batch = this.shift() as Batch
      texts.push(this.pool.text(batch))
      bytes += 1 + batch.bytes
      lines += batch.lines
      next = this.headBytes
    }
    return { text: texts.join('\n'), bytes, lines, since: first.since, returnValues: undefined }
  }

  /** The completion, taken out; undefined when none waits. */
  takeCompletion (): { text: string, bytes: number, lines: number, since: number, returnValues: Record<string, unknown> } | undefined {
    const c = this.completion
    if (c === undefined) return undefined
    this.completion = undefined
    this.consumed++
    this.memory.bytes -= c.bytes
    return { text: c.text, bytes: c.bytes, lines: 1, since: c.since, returnValues: c.returnValues }
  }

  /** UTF-8 bytes of the pending lines joined by newlines, as one entry would hold them. */
  get joinedBytes (): number {
    return this.lineCount === 0 ? 0 : this.pendingBytes + this.lineCount - 1
  }

  /** UTF-8 bytes of the oldest pending batch (what an entry takes at the least); 0 when no line is pending. */
  get headBytes (): number {
    if (this.batchHead < this.batches.length) return (this.batches[this.batchHead] as Batch).bytes
    // Lines still gathering are not sealed by looking: more may join them.
    return this.gathering.length === 0 ? 0 : this.gatheringBytes + this.gathering.length - 1
  }

  /** UTF-8 bytes of the completion's text; -1 when none waits. */
  get completionBytes (): number {
    return this.completion?.bytes ?? -1
  }

  /**
   * Leaves out the oldest pending lines, whole batches at a time, until what
   * is left joins to at most `keep` bytes: the lines between the entry just
   * taken and the newest ones. Returns the lines and the bytes (each line with
   * its newline) that went.
   */
  omit (keep: number): { lines: number, bytes: number } {
    let lines = 0
    let bytes = 0
    while (this.joinedBytes > keep) {
      const batch = this.dropOldest() as { bytes: number, lines: number }
      lines += batch.lines
      bytes += batch.bytes + 1
    }
    return { lines, bytes }
  }

  /** Drops the oldest batch of lines (what one entry would take) and says what went; undefined when no line is pending. */
  dropOldest (): { bytes: number, lines: number, since: number } | undefined {
    const batch = this.shift()
    if (batch !== undefined) this.pool.drop(batch)
    return batch
  }

  /** Removes the oldest batch of lines and returns it; undefined when no line is pending. */
  private shift (): Batch | undefined {
    if (this.batchHead === this.batches.length) {
      if (this.gathering.length === 0) return undefined
      this.seal()
    }
    const batch = this.batches[this.batchHead] as Batch
    this.batches[this.batchHead++] = undefined as unknown as Batch
    if (this.batchHead === this.batches.length) {
      this.batches = []
      this.batchHead = 0
    } else if (this.batchHead > 64 && this.batchHead * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.batchHead)
      this.batchHead = 0
    }
    this.pendingBytes -= batch.bytes - (batch.lines - 1)
    this.lineCount -= batch.lines
    this.consumed += batch.lines
    // Its lines were held with a newline each; the batch joins all but the last.
    this.memory.bytes -= batch.bytes + 1
    return batch
  }

  /** Drops every pending line and the completion; returns what went (`bytes` of lines, `completionBytes` of the completion, -1 if none). */
  dropAll (): { lines: number, bytes: number, completionBytes: number } {
    const lines = this.lineCount
    const bytes = this.pendingBytes
    const completionBytes = this.completion?.bytes ?? -1
    for (let i = this.batchHead; i < this.batches.length; i++) this.pool.drop(this.batches[i] as Batch)
    this.batches = []
    this.batchHead = 0
    this.gathering = []
    this.gatheringBytes = 0
    this.pendingBytes = 0
    this.lineCount = 0
    this.consumed += lines
    this.memory.bytes -= bytes + lines
    if (this.completion !== undefined) {
      this.memory.bytes -= this.completion.bytes
      this.completion = undefined
      this.consumed++
    }
    return { lines, bytes, completionBytes }
  }
}
