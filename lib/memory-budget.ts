import type { TokenQueue } from './token-queue'

/**
 * How much memory queued data holds, and which lines go first when it is too
 * much: maxBufferedBytes counts pending lines (with the newline that joins
 * each), entries attempted and not settled, and every queued token's string,
 * since tokens come from outside and can be long.
 */
export class MemoryBudget {
  private readonly max: number
  /** Eviction goes down to here, not just under the cap: see evict(). */
  private readonly low: number
  bytes = 0
  /**
   * Tokens with pending lines, in the order their current run of waiting lines
   * began: eviction takes from the front, roughly the oldest lines first
   * without a search over every token.
   */
  private readonly byAge = new Map<string, TokenQueue>()

  /** `max` bytes at most; eviction frees `slack` bytes more than it must. */
  constructor (max: number, slack = 0) {
    this.max = max
    this.low = max - slack
  }

  get over (): boolean {
    return this.bytes > this.max
  }

  /** A token's queue began (or began again) to hold pending lines. */
  pending (queue: TokenQueue): void {
    if (!this.byAge.has(queue.token)) this.byAge.set(queue.token, queue)
  }

  /** A token's pending lines were taken or dropped: it moves behind the others, or out. */
  taken (queue: TokenQueue): void {
    this.byAge.delete(queue.token)
    if (queue.pendingLines > 0) this.byAge.set(queue.token, queue)
  }

  /** The token whose pending lines are oldest, roughly; undefined when none are pending. */
  oldest (): TokenQueue | undefined {
    return this.byAge.values().next().value
  }

  /**
   * Over the cap: drops pending lines, oldest first, a batch (an entry's
   * worth) at a time, down to `slack` below it,
   * and tells `dropped` how many lines of which token went. Freeing a little
   * more than needed makes a flood evict (and report) in batches, not once
   * per line it adds. An entry already sent, or a completion, is never dropped
   * here: they are not pending lines.
   */
  evict (dropped: (queue: TokenQueue, lines: number) => void): void {
    while (this.bytes > this.low) {
      const queue = this.oldest()
      if (queue === undefined) return
      let lines = 0
      while (this.bytes > this.low) {
        // The queue takes the batch's bytes off this count itself.
        const batch = queue.dropOldest()
        if (batch === undefined) break
        lines += batch.lines
      }
      // Lines left means it is still the oldest: it keeps its place.
      if (queue.pendingLines === 0) this.byAge.delete(queue.token)
      dropped(queue, lines)
    }
  }

  /** When the oldest pending line was queued; `otherwise` when none is pending. */
  oldestSince (otherwise: number): number {
    return this.oldest()?.headSince ?? otherwise
  }
}
