import type { Clock } from './clock'
import { Pacer } from './pacer'

/**
 * What the scheduler asks before a request goes out. Synchronous: it never
 * waits on I/O, so that the path of a line never waits on it either. The
 * scheduler holds exactly one; a budget shared between processes (Redis, say)
 * implements the same interface.
 */
export interface RequestBudget {
  /**
   * Take one request slot at `now` (clock ms). 0 = granted; otherwise ms until it is worth asking again.
   * Asked only when no pause holds: the scheduler checks pausedUntil() first, the one place that decides it.
   */
  take: (now: number) => number
  /** A slot granted by take() went unspent (nothing was left to send): it returns to the budget. */
  giveBack: () => void
  /** The server pushed back (429 / 502 rate limit): slow the pace (AIMD). */
  slowDown: (now: number) => void
  /** A request succeeded: recover the pace step by step. */
  speedUp: () => void
  /** The server asked for a pause until `until` (clock ms): every sender on this budget waits. */
  pause: (until: number) => void
  /** Clock ms until which requests must wait; 0 (or a past time) = no pause. */
  pausedUntil: () => number
  /** X-RateLimit-Limit / -Remaining / -Reset seen on an answer (reset as clock ms), to steer the pace before any 429. */
  observe: (limit: number, remaining: number, resetAt: number) => void
  /** The budget calls this when its state changed asynchronously (shared state arrived, a pause was lifted
   *  elsewhere) so that the scheduler re-checks waiting tokens. One listener. */
  onChange: (listener: () => void) => void
  /** Releases timers/connections. Must resolve quickly (never waits past what the caller allows). */
  close: () => Promise<void>
  /**
   * Whether its waits hold even while flush() or close() bypass client pacing.
   * An exiting process has no later requests of its own to protect, but a
   * budget shared with other processes guards theirs too.
   */
  holdsWhileClosing: () => boolean
}

/**
 * The budget of one process: the adaptive pacer plus a pause. Nothing in it
 * changes by itself, so it never calls its listener; the scheduler's own
 * timers re-check it.
 */
export class LocalBudget implements RequestBudget {
  private readonly pacer: Pacer
  private readonly clock: Clock
  private readonly maxPause: number
  private until = 0

  /** `rate` requests/s (0 = no pacing), `burst` at once; no pause taken from headers lasts longer than `maxPause` ms. */
  constructor (rate: number, burst: number, clock: Clock, maxPause: number) {
    this.pacer = new Pacer(rate, burst, clock.now())
    this.clock = clock
    this.maxPause = maxPause
  }

  take (now: number): number {
    return this.pacer.take(now)
  }

  giveBack (): void {
    this.pacer.giveBack()
  }

  slowDown (now: number): void {
    this.pacer.slowDown(now)
  }

  speedUp (): void {
    this.pacer.speedUp()
  }

  pause (until: number): void {
    this.until = Math.max(this.until, until)
  }

  pausedUntil (): number {
    return this.until
  }

  holdsWhileClosing (): boolean {
    return false
  }

  observe (limit: number, remaining: number, resetAt: number): void {
    const now = this.clock.now()
    // Headers come from outside: anything unusable is ignored rather than trusted.
    if (!(limit > 0) || !(remaining >= 0) || !(resetAt > now)) return
    const until = Math.min(resetAt, now + this.maxPause)
    if (remaining < 1) {
      // Nothing left in the window: the next request would be a 429.
      this.pause(until)
      return
    }
    this.pacer.limit(remaining * 1000 / (until - now), until, now)
  }

  onChange (_listener: () => void): void {
    // Nothing here changes on its own: the scheduler's timers re-check the pause and the pace.
  }

  async close (): Promise<void> {
    // No timers, no connections.
  }
}
