// The simulator's rate limit: a token bucket per key, `burst` requests at
// once, refilled at `rps`, as the Vibe API documents for a portal.

/** A per-key limit: `burst` requests at once, refilled at `rps` a second. */
export interface RateLimit { rps: number, burst: number }

interface Bucket { tokens: number, last: number }

/** Token buckets per key, on the simulator's clock. */
export class RateBuckets {
  private readonly buckets = new Map<string, Bucket>()

  constructor (private limit: RateLimit | null, private readonly now: () => number) {}

  /** Changes the limit (null: none); buckets start full. */
  set (limit: RateLimit | null): void {
    this.limit = limit
    this.buckets.clear()
  }

  /** Takes one request from `key`'s bucket: 0 when it may pass, else the seconds to wait (Retry-After). */
  consume (key: string): number {
    const limit = this.limit
    if (limit === null) return 0
    const now = this.now()
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: limit.burst, last: now }
      this.buckets.set(key, bucket)
    }
    bucket.tokens = Math.min(limit.burst, bucket.tokens + Math.max(0, now - bucket.last) * limit.rps / 1000)
    bucket.last = now
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.rps))
  }

  /** Refills every bucket. */
  reset (): void {
    this.buckets.clear()
  }
}
