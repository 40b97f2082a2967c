import { backoff } from './backoff'
import type { Verdict } from './classify'
import type { DropReason } from './stats'

// First retry waits up to this long; each further one doubles the ceiling.
export const RETRY_BASE = 500
// A rate-limit pause lasts at least this long when the server names no delay
// (or a delay of 0, or a date in the past): the API asks for 1-2 s.
export const RATE_LIMIT_BASE = 1000

/** What delivery knows when an answer comes, beside the answer itself. */
export interface PolicyContext {
  now: number
  /** Failed attempts of this entry before this answer. */
  attempts: number
  /** Rate-limit pauses in a row, this one not counted yet if no pause is in force. */
  rateLimitStreak: number
  /** Clock ms until which the request budget is paused; a pause in force means requests in flight together met one limit together. */
  pausedUntil: number
  /** Clock ms by which close() must be done; Infinity while not closing. */
  deadline: number
  maxRetries: number
  maxRetryDelay: number
  retryAmbiguous: boolean
  /** onRateLimit: 'drop' gives up on what is queued rather than wait the pause out. */
  onRateLimit: 'buffer' | 'drop'
  random?: () => number
}

/** What to do about one answer. Pure data: delivery carries it out. */
export type Decision =
  | { kind: 'delivered' }
  /**
   * Pause every request until `until`; slow down unless a pause was already in force. Then the
   * entry waits the pause out (`wait`), everything queued is dropped (`drop`, onRateLimit: 'drop'),
   * or closing gives up at once (`giveUp`): the pause outlasts the close deadline.
   */
  | { kind: 'pause', until: number, delay: number, slowDown: boolean, then: 'wait' | 'drop' | 'giveUp' }
  /** Send the same entry again after `delay`. */
  | { kind: 'retry', delay: number, slowDown: boolean, possibleDuplicate: boolean }
  /** Give up on this entry (and, with `wholeToken`, on what the token has queued). */
  | { kind: 'drop', reason: DropReason, wholeToken: boolean, slowDown: boolean }
  | { kind: 'keyFailure' }
  | { kind: 'tokenFailure' }

/**
 * From a classified answer to a decision, without I/O or state: the whole
 * retry and pause policy in one place, testable on its own.
 */
export function decide (verdict: Verdict, ctx: PolicyContext): Decision {
  switch (verdict.action) {
    case 'ok':
      return { kind: 'delivered' }
    case 'keyFailure':
      return { kind: 'keyFailure' }
    case 'tokenFailure':
      return { kind: 'tokenFailure' }
    case 'rejected':
      return { kind: 'drop', reason: 'rejected', wholeToken: false, slowDown: false }
    case 'rateLimited': {
      const paused = ctx.now < ctx.pausedUntil
      const streak = paused ? Math.max(1, ctx.rateLimitStreak) : ctx.rateLimitStreak + 1
      // backoff() turns a delay of 0 or less into jittered backoff; the floor keeps a
      // server that always says "0" from being asked again at once.
      const delay = Math.max(RATE_LIMIT_BASE, backoff(streak, RATE_LIMIT_BASE, ctx.maxRetryDelay, verdict.retryAfter, ctx.random))
      const until = ctx.now + delay
      const then = ctx.onRateLimit === 'drop' ? 'drop' : outlasts(Math.max(until, ctx.pausedUntil), ctx.deadline) ? 'giveUp' : 'wait'
      return { kind: 'pause', until, delay, slowDown: !paused, then }
    }
    case 'retry': {
      // A 502 is also how the portal's own rate limit shows: slow down as for a 429.
      const slowDown = verdict.status === 502
      if (verdict.ambiguous && !ctx.retryAmbiguous) return { kind: 'drop', reason: 'ambiguous', wholeToken: false, slowDown }
      const attempt = ctx.attempts + 1
      if (attempt > ctx.maxRetries) return { kind: 'drop', reason: 'retriesExhausted', wholeToken: false, slowDown }
      const delay = backoff(attempt, RETRY_BASE, ctx.maxRetryDelay, verdict.retryAfter, ctx.random)
      if (ctx.now + delay > ctx.deadline) return { kind: 'drop', reason: 'shutdown', wholeToken: true, slowDown }
      return { kind: 'retry', delay, slowDown, possibleDuplicate: verdict.ambiguous }
    }
  }
}

/** Whether a pause until `pausedUntil` outlasts the close `deadline`: waiting it out would deliver nothing. */
export function outlasts (pausedUntil: number, deadline: number): boolean {
  return pausedUntil > deadline
}
