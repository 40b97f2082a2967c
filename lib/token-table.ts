import { ChunkPool } from './chunk-pool'
import type { Clock } from './clock'
import type { Drops } from './drops'
import { MemoryBudget } from './memory-budget'
import type { RowBudget } from './row-budget'
import type { Scheduler } from './scheduler'
import type { SpoolHooks } from './spool'
import type { DropReason, Stats } from './stats'
import { type Entry, TokenQueue } from './token-queue'

/**
 * Every token with something queued, the memory that holds, and the one path by
 * which a token's lines leave it: settled (delivered or given up on), dropped
 * for a reason, left out (omitted), skipped (blank) or evicted. Each line that
 * goes is counted here once, with its drop event and its spool record, so that
 * following an answer to where its lines end stays in this file.
 */
export class TokenTable {
  private readonly tokens = new Map<string, TokenQueue>()
  /** What queued data holds, against maxBufferedBytes. */
  readonly memory: MemoryBudget
  /** The buffers the queues keep full batches of lines in, reused: as many as the memory cap can fill. */
  private readonly chunks: ChunkPool
  readonly drops: Drops
  private readonly stats: Stats
  private readonly scheduler: Scheduler
  private readonly rows: RowBudget
  private readonly clock: Clock
  private readonly maxEntryBytes: number
  private readonly spool: SpoolHooks | undefined
  /** A token was forgotten: its timers go (Readiness). */
  private readonly forgotten: (queue: TokenQueue) => void

  constructor (maxBufferedBytes: number, maxEntryBytes: number, stats: Stats, drops: Drops, scheduler: Scheduler, rows: RowBudget, clock: Clock, spool: SpoolHooks | undefined, forgotten: (queue: TokenQueue) => void) {
    this.forgotten = forgotten
    // A flood into a stalled server evicts an entry's worth at a time (at most 1/64 of the cap).
    this.memory = new MemoryBudget(maxBufferedBytes, Math.min(maxEntryBytes, Math.floor(maxBufferedBytes / 64)))
    this.chunks = new ChunkPool(maxEntryBytes, Math.ceil(maxBufferedBytes / maxEntryBytes))
    this.maxEntryBytes = maxEntryBytes
    this.stats = stats
    this.drops = drops
    this.scheduler = scheduler
    this.rows = rows
    this.clock = clock
    this.spool = spool
  }

  get size (): number {
    return this.tokens.size
  }

  get (token: string): TokenQueue | undefined {
    return this.tokens.get(token)
  }

  /** A copy: dropping a token while walking them forgets it. */
  all (): TokenQueue[] {
    return [...this.tokens.values()]
  }

  /** A new queue for a token not queued yet. */
  open (token: string): TokenQueue {
    const queue = new TokenQueue(token, this.maxEntryBytes, this.chunks, this.memory)
    if (this.rows.on) queue.rows = this.rows.of(token, this.clock.now())
    this.tokens.set(token, queue)
    // Tokens come from outside and may be long: they count against the memory cap too.
    this.memory.bytes += token.length
    return queue
  }

  /** Queues a line (already within maxEntryBytes) at clock ms `now`. */
  push (queue: TokenQueue, text: string, bytes: number, now: number): void {
    const first = queue.pendingLines === 0
    queue.push(text, bytes, now)
    this.spool?.line(queue, text, bytes, now)
    if (first) this.memory.pending(queue)
  }

  /** Queues the completion behind the token's lines. */
  complete (queue: TokenQueue, text: string, bytes: number, returnValues: Record<string, unknown>): void {
    const now = this.clock.now()
    queue.complete(text, bytes, returnValues, now)
    this.spool?.completion(queue, text, bytes, returnValues, now)
  }

  /** A line not queued: counted as dropped; a completion's failure is named, except a second one of a completed activity. */
  refuse (token: string, reason: DropReason, completion: boolean): void {
    this.drops.lines(reason, 1, token)
    if (completion && reason !== 'completed') this.drops.completionFailed(token, reason, undefined)
  }

  /** Over maxBufferedBytes: the memory budget picks the lines; they are counted here. */
  evictIfOver (): void {
    if (this.memory.over) this.memory.evict(this.evicted)
  }

  private readonly evicted = (queue: TokenQueue, lines: number): void => {
    this.spool?.settled(queue, queue.consumed - lines + 1, lines)
    queue.finish(lines)
    this.drops.lines('overflow', lines, queue.token)
    this.forgetIfIdle(queue)
  }

  /** Lines formed into nothing (blank after cleaning): not worth a request, settled as skipped. */
  skipped (queue: TokenQueue, first: number, lines: number): void {
    this.stats.skipped += lines
    this.spool?.settled(queue, first, queue.consumed - first + 1)
    // With the lines it left out (omitted), which finish with their entry.
    queue.finish(queue.consumed - first + 1)
  }

  /** Lines left out of an entry (maxRows). */
  omitted (queue: TokenQueue, lines: number): void {
    // They finish with the entry they were left out of (its span), not now: the
    // lines before them are not finished yet, and flush() waits in order.
    // Left out for good, even if the entry around them is kept in the spool at shutdown.
    this.spool?.settled(queue, queue.consumed - lines + 1, lines)
    this.drops.lines('omitted', lines, queue.token)
  }

  /** An entry was formed from the token's pending lines: it is held until settled. */
  attempt (queue: TokenQueue, entry: Entry): void {
    queue.hold(entry)
    this.memory.taken(queue)
  }

  /** The attempted entry is done with: delivered or given up on. `kept`: it stays in the spool. */
  settle (queue: TokenQueue, entry: Entry, kept = false): void {
    // Lines given up on at shutdown stay in the spool: the next start delivers them.
    if (!kept) this.spool?.settled(queue, entry.first, entry.span)
    entry.settled = true
    queue.release(entry)
    // Its lines and those left out between them (omitted).
    queue.finish(entry.span)
    // Its workflow writes no more rows; a later line is dropped as `completed` before it could need them.
    if (entry.returnValues !== undefined) {
      this.rows.forget(queue.token)
      // Kept in the spool, the completion goes again at the next start: its rows stay with it.
      if (!kept) this.spool?.setState(queue.token, undefined)
    }
  }

  /** Gives up on the attempted entry. `unknown`: it was in flight at the deadline and may have arrived. */
  dropEntry (queue: TokenQueue, entry: Entry, reason: DropReason, code?: string, unknown = false): void {
    const last = entry.first + entry.span - 1
    if (entry.returnValues !== undefined) this.drops.completionFailed(queue.token, reason, code, unknown, this.kept(queue, reason, last, 1) === 1)
    const kept = this.kept(queue, reason, entry.first, entry.span)
    this.settle(queue, entry, reason === 'shutdown')
    // In flight at the deadline, it may have arrived: counted apart, never as dropped.
    if (unknown) this.stats.unknown += entry.lines
    else this.givenUp(queue, reason, entry.lines, kept, code)
  }

  /**
   * How many of the token's lines `first` … `first + n - 1`, given up on for
   * `reason`, stay in the disk spool for the next start: at shutdown, those the
   * spool holds (not those it let go over spoolMaxBytes, nor any once it failed).
   */
  private kept (queue: TokenQueue, reason: DropReason, first: number, n: number): number {
    return reason === 'shutdown' ? this.spool?.keeps(queue, first, n) ?? 0 : 0
  }

  /** Lines given up on: those left in the spool are counted there (the next start sends them), the rest dropped. */
  private givenUp (queue: TokenQueue, reason: DropReason, lines: number, kept: number, code: string | undefined): void {
    this.stats.leftInSpool += kept
    this.drops.lines(reason, lines - kept, queue.token, code)
  }

  /** Drops what a token has not yet sent: its pending lines and its completion. */
  private dropPending (queue: TokenQueue, reason: DropReason, code?: string): void {
    if (queue.current === undefined) this.scheduler.remove(queue)
    const before = queue.consumed
    const gone = queue.dropAll()
    const kept = this.kept(queue, reason, before + 1, queue.consumed - before)
    if (reason !== 'shutdown') this.spool?.settled(queue, before + 1, queue.consumed - before)
    this.memory.taken(queue)
    let lines = gone.lines
    if (gone.completionBytes !== -1) {
      this.drops.completionFailed(queue.token, reason, code, false, this.kept(queue, reason, queue.consumed, 1) === 1)
      lines++
    }
    queue.finish(lines)
    this.givenUp(queue, reason, lines, kept, code)
  }

  /** Drops everything queued for a token, except an entry whose request is in flight. */
  dropToken (queue: TokenQueue, reason: DropReason, code?: string): void {
    this.dropPending(queue, reason, code)
    const current = queue.current
    if (current !== undefined && queue.phase !== 'sending') {
      this.scheduler.remove(queue)
      this.dropEntry(queue, current, reason, code)
    }
    this.forgetIfIdle(queue)
  }

  /** Drops what every token holds, except entries in flight (their answers settle them). */
  dropAll (reason: DropReason, code?: string): void {
    for (const queue of this.all()) this.dropToken(queue, reason, code)
  }

  /**
   * The close deadline: everything still queued or waiting is dropped as `shutdown`;
   * what is in flight is of unknown outcome.
   */
  abandon (): void {
    for (const queue of this.all()) {
      const current = queue.current
      // Its answer may still come, but close() will not wait for it: the outcome is unknown.
      if (current !== undefined && queue.phase === 'sending') this.dropEntry(queue, current, 'shutdown', undefined, true)
      this.dropToken(queue, 'shutdown')
    }
  }

  /** Forgets a token with nothing queued and nothing attempted. */
  forgetIfIdle (queue: TokenQueue): void {
    if (!queue.idle || queue.phase === 'sending' || this.tokens.get(queue.token) !== queue) return
    this.scheduler.remove(queue)
    this.forgotten(queue)
    this.tokens.delete(queue.token)
    this.memory.bytes -= queue.token.length
  }

  /** Whether any token has lines not yet delivered or given up on. */
  unsettled (): boolean {
    for (const queue of this.tokens.values()) if (queue.finished < queue.pushed) return true
    return false
  }
}
