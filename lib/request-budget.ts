// The interface agreed with the scheduler of issue 8 (which owns this file and may add members):
// the scheduler holds exactly one RequestBudget and never awaits it on the path of a line.

/** What the scheduler asks before a request goes out. Synchronous: it never waits on I/O. */
export interface RequestBudget {
  /** Take one request slot at `now` (clock ms). 0 = granted; otherwise ms until it is worth asking again. */
  take: (now: number) => number
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
}
