import type { Clock } from './clock'
import type { Config } from './options'
import { bucketKey, DEFAULT_PREFIX, redisTarget, type SyncReply } from './redis-bucket'
import { RedisLink } from './redis-link'
import type { Reporter } from './reporter'
import type { RequestBudget } from './request-budget'

// Redis answers in a millisecond on a LAN: half a second means something is wrong.
const DEFAULT_TIMEOUT = 500
// At start-up a failed connection (refused, refused at AUTH, no TCP connection) is
// told by the client itself. This only ends the wait for a Redis that takes the
// connection and never answers; it is long, because processes that start together
// on a loaded machine may take a while to get their first answer, and until then
// each one waits rather than send requests of its own that the bucket never saw.
const DEFAULT_CONNECT_TIMEOUT = 5000
// While pacing locally, how often to ask whether Redis answers again.
const DEFAULT_PROBE_INTERVAL = 1000
// A permit held unused longer than this is given back to the bucket rather than spent:
// spent late, it would add to another process's burst and the portal would see more
// than the bucket allowed; thrown away, it would cost the processes a request.
const DEFAULT_PERMIT_TTL = 1000
// Successes carried to Redis in one call: enough to restore any rate, bounded.
const MAX_UPS = 100
// A shared pause ending this close to this process's own is the one it published.
const OWN_PAUSE_SLACK = 250

export interface SharedBudgetOptions {
  /** `redis://` or `rediss://` URL; its password is a secret. */
  redisUrl: string
  apiKey: string
  baseUrl: string
  /** Requests per second of the shared bucket (maxRequestsPerSecond); 0 shares pauses only. */
  rate: number
  burst: number
  clock: Clock
  reporter: Reporter
  /** Paces this process alone while Redis is away. */
  fallback: RequestBudget
  /** The longest pause this process keeps to (maxRetryDelay): a longer one read from Redis is cut to it. */
  maxPause: number
  /** ms a Redis call (and the first connection) may take before local pacing takes over. */
  timeout?: number
  /** ms the first connection and answer may take, failing nothing, before local pacing takes over. */
  connectTimeout?: number
  probeInterval?: number
  permitTtl?: number
  prefix?: string
}

/**
 * A request budget shared by every process that uses the same API key on the
 * same portal, through a token bucket in Redis. `take` never waits on Redis:
 * it serves a small reserve of permits fetched ahead, one call to Redis at a
 * time, and tells the scheduler (onChange) when permits or news arrive. Pauses
 * and the adaptive rate live in the bucket, so a 429 met by one process slows
 * and pauses all of them; each learns it with its next permit. Redis is an
 * accelerator: unreachable or slow, the fallback paces this process alone
 * (one stderr line) until Redis answers again.
 */
export class SharedBudget implements RequestBudget {
  private readonly clock: Clock
  private readonly reporter: Reporter
  private readonly fallback: RequestBudget
  /** The connection, and whether the bucket paces now (its mode). */
  private readonly link: RedisLink
  private readonly target: string
  private readonly burst: number
  private readonly timeout: number
  private readonly permitTtl: number
  private readonly maxPause: number
  private reserve = 0
  private reserveUntil = 0
  /** Clock ms until which the shared bucket says to wait, as last heard. Pauses met here are the fallback's. */
  private sharedPause = 0
  /** What Redis has not heard yet. */
  private pendingPause = 0
  private pendingUps = 0
  private pendingSlow = false
  private pendingBack = 0
  /** A take found no permit: fetch for it. */
  private wanted = false
  /** The last permit went: fetch one ahead. */
  private ahead = false
  /** Clock ms when the bucket will have a token, as last heard; 0 = ask at once. */
  private retryAt = 0
  private syncing = false
  private again = false
  private retryTimer: unknown = undefined
  private listener: () => void = () => {}
  private closed = false

  constructor (opts: SharedBudgetOptions) {
    this.clock = opts.clock
    this.reporter = opts.reporter
    this.fallback = opts.fallback
    this.burst = opts.burst
    this.maxPause = opts.maxPause
    this.timeout = opts.timeout ?? DEFAULT_TIMEOUT
    this.permitTtl = opts.permitTtl ?? DEFAULT_PERMIT_TTL
    this.target = redisTarget(opts.redisUrl)
    this.link = new RedisLink({
      redisUrl: opts.redisUrl,
      key: bucketKey(opts.apiKey, opts.baseUrl, opts.prefix ?? DEFAULT_PREFIX),
      rate: opts.rate,
      burst: opts.burst,
      timeout: this.timeout,
      maxPause: opts.maxPause,
      connectTimeout: opts.connectTimeout ?? Math.max(this.timeout, DEFAULT_CONNECT_TIMEOUT),
      probeInterval: opts.probeInterval ?? DEFAULT_PROBE_INTERVAL,
      target: this.target,
      clock: this.clock,
      reporter: this.reporter,
      fallBack: (reason) => this.fallBack(reason),
      ask: () => this.sync(true)
    })
  }

  take (now: number): number {
    if (this.link.mode === 'local') return this.fallback.take(now)
    if (this.reserve > 0 && now <= this.reserveUntil) {
      this.reserve--
      if (this.reserve === 0) {
        this.ahead = true
        this.sync()
      }
      return 0
    }
    // Permits held past their time are not spent late, nor lost: they go back to the bucket.
    this.pendingBack = Math.min(this.burst, this.pendingBack + this.reserve)
    this.reserve = 0
    this.wanted = true
    if (this.link.mode === 'connecting') return Math.max(1, this.link.connectDeadline - now)
    if (now >= this.retryAt) this.sync()
    // onChange comes as soon as a permit is there; this is only the latest time to ask again.
    return Math.max(1, this.retryAt > now ? this.retryAt - now : this.timeout)
  }

  giveBack (): void {
    if (this.link.mode === 'local') this.fallback.giveBack()
    // Granted from the reserve (take() never grants while connecting): it is held again, and goes
    // back to the bucket like any other once held too long.
    else this.reserve++
  }

  slowDown (now: number): void {
    this.fallback.slowDown(now)
    if (this.link.mode === 'local') return
    this.pendingSlow = true
    // The portal pushed back: permits fetched before that are spent no more.
    this.reserve = 0
    this.sync()
  }

  speedUp (): void {
    this.fallback.speedUp()
    if (this.link.mode !== 'local' && this.pendingUps < MAX_UPS) this.pendingUps++
  }

  pause (until: number): void {
    this.fallback.pause(until)
    if (until > this.pendingPause) this.pendingPause = until
    // Published at once, so that the others stop before their next request.
    if (this.link.mode !== 'local') this.sync()
  }

  pausedUntil (): number {
    return Math.max(this.sharedPause, this.fallback.pausedUntil())
  }

  /** Connecting or shared: the other processes on the key are what a burst at exit would eat. Pacing locally: as alone. */
  holdsWhileClosing (): boolean {
    return this.link.mode !== 'local'
  }

  observe (limit: number, remaining: number, resetAt: number): void {
    const before = this.fallback.pausedUntil()
    this.fallback.observe(limit, remaining, resetAt)
    // The key's window is spent (X-RateLimit-Remaining: 0): it is spent for every process on
    // the key, so the pause the fallback took from it (bounded there) is published like a 429's.
    const after = this.fallback.pausedUntil()
    if (after > before) this.pause(after)
  }

  onChange (listener: () => void): void {
    this.listener = listener
  }

  /** Never waits on Redis: what it still holds (a few permits, some successes) is not worth it. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer)
    this.link.close()
    await this.fallback.close()
  }

  /** One call to Redis at a time; what comes up meanwhile goes with the next one. */
  private sync (probe = false): void {
    if (this.closed || (this.link.mode !== 'shared' && !probe)) return
    if (this.syncing) {
      this.again = true
      return
    }
    if (this.retryTimer !== undefined) {
      this.clock.clearTimeout(this.retryTimer)
      this.retryTimer = undefined
    }
    const now = this.clock.now()
    const want = Math.min(this.burst, this.wanted ? 2 : this.ahead ? 1 : 0)
    const sent = { ups: this.pendingUps, slow: this.pendingSlow, pauseUntil: this.pendingPause, back: this.pendingBack }
    this.pendingUps = 0
    this.pendingSlow = false
    this.pendingPause = 0
    this.pendingBack = 0
    this.syncing = true
    this.link.bucket.sync({ want, ups: sent.ups, slow: sent.slow, pauseMs: sent.pauseUntil - now, back: sent.back }).then(
      (reply) => this.synced(reply),
      (err: Error) => {
        this.syncing = false
        // Not heard by Redis: kept for the next call.
        this.pendingUps = Math.min(MAX_UPS, this.pendingUps + sent.ups)
        this.pendingSlow ||= sent.slow
        this.pendingPause = Math.max(this.pendingPause, sent.pauseUntil)
        this.pendingBack = Math.min(this.burst, this.pendingBack + sent.back)
        if (this.link.mode === 'connecting' && this.link.bucket.ready) {
          // Connected, but the first answer was slow (a loaded machine at start-up): ask again
          // rather than pace alone; the connect timer ends the wait if it never comes.
          this.link.lastError = err.message
          this.again = false
          this.sync(true)
          return
        }
        this.fallBack(err.message)
      }
    )
  }

  private synced (reply: SyncReply): void {
    this.syncing = false
    // An answer already on its way when close() came. close() drops the socket at once, so
    // whether the answer is read before that is the kernel's timing, which no test arranges.
    /* c8 ignore next */
    if (this.closed) return
    const now = this.clock.now()
    let changed = false
    if (this.link.mode !== 'shared') {
      this.link.toShared()
      changed = true
    }
    const left = Math.min(reply.pauseLeft, this.maxPause)
    const pause = left > 0 ? now + left : 0
    if (pause > now || this.sharedPause > now) changed = true
    // A pause of another process's (not one this process published itself) holding this one: said once.
    if (pause > this.fallback.pausedUntil() + OWN_PAUSE_SLACK) {
      this.reporter.problem('SHARED_PAUSE', `a pause shared through Redis (${this.target}) holds requests for ${Math.ceil(left / 1000)} s more: another process on this key met a rate limit (pauses are cut to maxRetryDelay, ${this.maxPause} ms)`)
    }
    this.sharedPause = pause
    if (reply.granted > 0) {
      this.reserve += reply.granted
      this.reserveUntil = now + this.permitTtl
      this.wanted = false
      this.ahead = false
      changed = true
    }
    const wait = Math.min(reply.wait, this.maxPause)
    this.retryAt = wait > 0 ? now + wait : 0
    if (this.again) {
      this.again = false
      this.sync()
    } else if (this.wanted) {
      // No permit yet: ask again when the bucket says one will be there.
      this.retryTimer = this.clock.setTimeout(() => {
        this.retryTimer = undefined
        this.sync()
      }, Math.max(1, wait))
    }
    if (changed) this.listener()
  }

  /** Redis failed or was slow: this process paces itself until Redis answers again. */
  private fallBack (reason: string): void {
    if (!this.link.toLocal()) return
    this.reserve = 0
    this.wanted = false
    this.ahead = false
    // No retry timer is pending here: it is gone once a call to Redis went out (the one that
    // failed). A connect timer still armed (a refused connection) ends with Redis's first answer.
    // A pause learned from the others still holds.
    this.fallback.pause(this.sharedPause)
    this.link.outage(reason)
    this.listener()
  }
}

/**
 * The budget of a transport: the local one, or, with `redisUrl`, the shared one
 * that falls back to it. The Redis client is loaded in the second case only.
 */
export function createBudget (config: Config, clock: Clock, reporter: Reporter, local: RequestBudget): RequestBudget {
  if (config.redisUrl === undefined) return local
  return new SharedBudget({
    redisUrl: config.redisUrl,
    apiKey: config.apiKey,
    baseUrl: config.baseUrl,
    rate: config.maxRequestsPerSecond,
    burst: config.burst,
    maxPause: config.maxRetryDelay,
    clock,
    reporter,
    fallback: local
  })
}
