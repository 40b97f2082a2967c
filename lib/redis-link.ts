import type { Clock } from './clock'
import { RedisBucket } from './redis-bucket'
import type { Reporter } from './reporter'

// ioredis's error for a command that got no answer within commandTimeout.
const SLOW_COMMAND = 'Command timed out'

/** connecting: no answer yet; shared: the bucket in Redis paces; local: the fallback paces until Redis answers again. */
export type Mode = 'connecting' | 'shared' | 'local'

export interface RedisLinkOptions {
  redisUrl: string
  /** The bucket's Redis key. */
  key: string
  rate: number
  burst: number
  timeout: number
  maxPause: number
  connectTimeout: number
  probeInterval: number
  /** Where Redis is, without credentials, for stderr. */
  target: string
  clock: Clock
  reporter: Reporter
  /** Redis failed or was slow: the budget paces locally (it calls `toLocal`). */
  fallBack: (reason: string) => void
  /** Redis is connected (again), or may answer again: ask the bucket. */
  ask: () => void
}

/**
 * The connection to the shared bucket, and whether it paces this process: a
 * failed connection or no answer within connectTimeout switches to local
 * pacing (said once per outage), which probes every probeInterval until Redis
 * answers again (said once too). The budget logic itself is SharedBudget's.
 */
export class RedisLink {
  readonly bucket: RedisBucket
  mode: Mode = 'connecting'
  /** Clock ms when the wait for a first answer ends. */
  readonly connectDeadline: number
  /** The last error, for the line that says Redis is away. */
  lastError = 'no answer'
  private readonly clock: Clock
  private readonly reporter: Reporter
  private readonly target: string
  private readonly probeInterval: number
  private readonly connectTimeout: number
  private readonly fallBack: (reason: string) => void
  private readonly ask: () => void
  private connectTimer: unknown = undefined
  private probeTimer: unknown = undefined
  /** The last error was a handshake command that timed out on a live connection (connecting only). */
  private slowHandshake = false
  private closed = false

  constructor (opts: RedisLinkOptions) {
    this.clock = opts.clock
    this.reporter = opts.reporter
    this.target = opts.target
    this.probeInterval = opts.probeInterval
    this.connectTimeout = opts.connectTimeout
    this.fallBack = opts.fallBack
    this.ask = opts.ask
    this.bucket = new RedisBucket(opts.redisUrl, opts.key, opts.rate, opts.burst, {
      timeout: opts.timeout,
      maxPause: opts.maxPause,
      // Connected at last, or back after an outage: ask the bucket now. Only its answer ends the
      // connect timer: a connection that never answers is no Redis to share with. Never called
      // once closed: the connection is gone and does not come back.
      onReady: () => this.ask(),
      onError: (message) => {
        this.lastError = message
        // Before the first answer only a failed connection counts: refused, timed out, refused at
        // AUTH. A handshake command (AUTH) that found Redis busy only timed out: the connection is
        // dropped by the client, and tried again once it ended; connectTimeout ends the wait.
        this.slowHandshake = message === SLOW_COMMAND
        if (this.mode === 'connecting' && !this.bucket.ready && !this.slowHandshake) this.fallBack(message)
      },
      onEnd: () => {
        if (this.mode === 'connecting' && this.slowHandshake && !this.closed) this.bucket.reconnect()
      }
    })
    this.connectDeadline = this.clock.now() + this.connectTimeout
    this.connectTimer = this.clock.setTimeout(() => {
      this.connectTimer = undefined
      this.fallBack(`no answer within ${this.connectTimeout} ms: ${this.lastError}`)
    }, this.connectTimeout)
    // Requests waiting for it hold the process through the scheduler's timer; this one need not.
    this.clock.unref(this.connectTimer)
  }

  /** Redis answered: the bucket paces from now on (said once after an outage). */
  toShared (): void {
    if (this.mode === 'local') {
      this.reporter.say(`Redis (${this.target}) answers again: requests are paced with the other processes on this key once more`)
    }
    this.mode = 'shared'
    if (this.connectTimer !== undefined) {
      this.clock.clearTimeout(this.connectTimer)
      this.connectTimer = undefined
    }
    if (this.probeTimer !== undefined) {
      this.clock.clearTimeout(this.probeTimer)
      this.probeTimer = undefined
    }
  }

  /** Redis failed or was slow: false when that is already known (or closed); else local pacing begins. */
  toLocal (): boolean {
    if (this.closed || this.mode === 'local') return false
    this.mode = 'local'
    return true
  }

  /** Says the outage (each one, as the reporter's budget allows) and probes until Redis answers again. */
  outage (reason: string): void {
    this.reporter.say(`Redis (${this.target}) is unreachable or slow (${reason}); each process paces itself until it answers again, so rate limits may be met meanwhile`)
    this.probe()
  }

  private probe (): void {
    this.probeTimer = this.clock.setTimeout(() => {
      this.probeTimer = undefined
      if (this.bucket.ready) this.ask()
      else this.bucket.reconnect()
      if (this.mode === 'local') this.probe()
    }, this.probeInterval)
    // Waiting for Redis must not keep an in-process application alive.
    this.clock.unref(this.probeTimer)
  }

  /** Drops the connection and the timers at once. */
  close (): void {
    this.closed = true
    for (const timer of [this.connectTimer, this.probeTimer]) {
      if (timer !== undefined) this.clock.clearTimeout(timer)
    }
    this.bucket.close()
  }
}
