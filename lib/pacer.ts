/** The slowest pace after slow-downs: the configured rate divided by this. */
export const RATE_FLOOR_DIVISOR = 16
/** Each success adds back the configured rate divided by this. */
export const RATE_STEP_DIVISOR = 10

// Both are declared once here and injected into the shared bucket's Lua script (redis-bucket.ts),
// so that a local and a shared budget slow down and recover alike.

/**
 * Client-side pacing shared by every token: a token bucket whose rate adapts
 * (AIMD). A 429 or 502 halves the rate; each success adds back a tenth of the
 * configured rate, never above it. A well-paced transport rarely meets a 429.
 */
export class Pacer {
  private readonly max: number
  private readonly burst: number
  private rate: number
  private tokens: number
  private last: number
  /** What the server's X-RateLimit headers leave for the current window, as a rate; Infinity = no word. */
  private ceiling = Infinity
  private ceilingUntil = 0

  /** `rate` requests per second, 0 for no pacing. */
  constructor (rate: number, burst: number, now: number) {
    this.max = rate
    this.rate = rate
    this.burst = burst
    this.tokens = burst
    this.last = now
  }

  /** The rate in force at `now`: the adaptive rate, or less while the server's window asks for less. */
  private effective (now: number): number {
    return now < this.ceilingUntil ? Math.min(this.rate, this.ceiling) : this.rate
  }

  private refill (now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, now - this.last) * this.effective(now) / 1000)
    this.last = now
  }

  /** Takes a slot and returns 0, or returns the ms until one is free. */
  take (now: number): number {
    if (this.max === 0) return 0
    this.refill(now)
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.ceil((1 - this.tokens) * 1000 / this.effective(now))
  }

  /** A slot taken went unspent: it is there again, never above the burst. */
  giveBack (): void {
    if (this.max === 0) return
    this.tokens = Math.min(this.burst, this.tokens + 1)
  }

  /**
   * The server said how many requests are left until `until`: spread them over
   * the time left, so that the window is not spent before it resets. A ceiling
   * above the configured rate changes nothing.
   */
  limit (rate: number, until: number, now: number): void {
    if (this.max === 0) return
    this.refill(now)
    // Never quite 0: a window with nothing left is a pause, which the budget handles.
    this.ceiling = Math.max(rate, this.max / RATE_FLOOR_DIVISOR)
    this.ceilingUntil = until
    if (this.ceiling < this.rate) this.tokens = Math.min(this.tokens, 1)
  }

  /** The server pushed back: halve the rate and spend the burst. */
  slowDown (now: number): void {
    if (this.max === 0) return
    this.refill(now)
    this.rate = Math.max(this.max / RATE_FLOOR_DIVISOR, this.rate / 2)
    this.tokens = Math.min(this.tokens, 0)
  }

  /** A request succeeded: recover the rate step by step. */
  speedUp (): void {
    this.rate = Math.min(this.max, this.rate + this.max / RATE_STEP_DIVISOR)
  }
}
