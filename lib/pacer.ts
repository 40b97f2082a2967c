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

  /** `rate` requests per second, 0 for no pacing. */
  constructor (rate: number, burst: number, now: number) {
    this.max = rate
    this.rate = rate
    this.burst = burst
    this.tokens = burst
    this.last = now
  }

  get currentRate (): number {
    return this.rate
  }

  private refill (now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate / 1000)
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
    return Math.ceil((1 - this.tokens) * 1000 / this.rate)
  }

  /** The server pushed back: halve the rate and spend the burst. */
  slowDown (now: number): void {
    if (this.max === 0) return
    this.refill(now)
    this.rate = Math.max(this.max / 16, this.rate / 2)
    this.tokens = Math.min(this.tokens, 0)
  }

  /** A request succeeded: recover the rate step by step. */
  speedUp (): void {
    this.rate = Math.min(this.max, this.rate + this.max / 10)
  }
}
