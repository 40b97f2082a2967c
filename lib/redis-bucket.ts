import { createHash } from 'node:crypto'
import type { Redis, RedisOptions } from 'ioredis'
import { RATE_FLOOR_DIVISOR, RATE_STEP_DIVISOR } from './pacer'
import { credentials, Redactor } from './redact'

export const DEFAULT_PREFIX = 'pino-bitrix24-workflow:budget:'

// Longest wait or pause a Redis answer may ask for: what comes from outside is bounded.
const MAX_WAIT = 3_600_000

/**
 * The shared token bucket, in one atomic step so that processes never hand out
 * the same token twice. Everything runs on Redis's own clock (TIME): processes
 * on different machines never compare their clocks, they send and receive
 * durations. In one call: refill by the time elapsed, apply what the caller
 * learned since its last call (permits given back unused, a slow-down,
 * successes, a pause), then take up to `want` tokens unless a pause holds.
 * What is stored is read as untrusted: anyone who can write Redis can write
 * it, so a value that is no number, NaN or out of its range counts as missing.
 *
 * A stored pause longer than the caller's own maxRetryDelay is cut to it from
 * now, and stored so: it then ends for everyone, instead of restarting at each
 * call (a pause written by hand, or met by a peer that allows longer ones).
 *
 * KEYS[1] the bucket; ARGV: rate (req/s, 0 = no pacing), burst, want, ups, slow (0/1), pause ms, back, longest pause ms.
 * Returns { granted, wait ms (0 or until a token is there), pause ms left, current rate × 1000 }.
 */
export const BUCKET_SCRIPT = `
local rateMax = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local ups = tonumber(ARGV[4])
local slow = tonumber(ARGV[5])
local pauseMs = tonumber(ARGV[6])
local back = tonumber(ARGV[7])
local maxPause = tonumber(ARGV[8])
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function stored (v, lo, hi, default)
  v = tonumber(v)
  if v == nil or v ~= v or v < lo or v > hi then return default end
  return v
end
local s = redis.call('HMGET', KEYS[1], 'tokens', 'last', 'rate', 'pause')
local tokens = stored(s[1], 0, burst, burst)
local last = stored(s[2], 0, now, now)
local rate = math.min(rateMax, math.max(rateMax / ${RATE_FLOOR_DIVISOR}, stored(s[3], 0, math.huge, rateMax)))
local pause = stored(s[4], 0, now + ${MAX_WAIT}, 0)
if pause > now + maxPause then pause = now + maxPause end
if now > last then tokens = math.min(burst, tokens + (now - last) * rate / 1000) end
if back > 0 then tokens = math.min(burst, tokens + back) end
if slow == 1 and now >= pause and rateMax > 0 then
  rate = math.max(rateMax / ${RATE_FLOOR_DIVISOR}, rate / 2)
  if tokens > 0 then tokens = 0 end
end
if ups > 0 then rate = math.min(rateMax, rate + ups * rateMax / ${RATE_STEP_DIVISOR}) end
if pauseMs > 0 and now + pauseMs > pause then pause = now + pauseMs end
local granted = 0
local wait = 0
if now < pause then
  wait = pause - now
elseif rateMax <= 0 then
  granted = want
else
  granted = math.min(want, math.floor(tokens))
  tokens = tokens - granted
  if granted == 0 and want > 0 then wait = math.ceil((1 - tokens) * 1000 / rate) end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', now, 'rate', tostring(rate), 'pause', pause)
redis.call('PEXPIRE', KEYS[1], math.max(0, pause - now) + 60000)
return { granted, wait, math.max(0, pause - now), math.floor(rate * 1000) }
`

/**
 * The Redis key of the bucket for one API key on one portal. A hash of both,
 * never the key itself: whoever can read Redis must not learn the API key.
 */
export function bucketKey (apiKey: string, baseUrl: string, prefix = DEFAULT_PREFIX): string {
  return prefix + createHash('sha256').update(apiKey + '\n' + baseUrl).digest('hex')
}

/** Where Redis is, for a message: scheme, host and port, never the credentials. */
export function redisTarget (url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}`
  } catch {
    return 'redis'
  }
}

/**
 * A message of the Redis client, fit for stderr: it may quote the URL or the
 * password it was given, so both go, and it is cut short.
 */
export function cleanRedisMessage (message: string, url: string): string {
  // Of any length: a short Redis password is still one.
  let text = new Redactor([url, ...credentials(url)], 1).redact(message)
  // Whatever still looks like credentials in a URL.
  // eslint-disable-next-line no-control-regex
  text = text.replace(/\/\/[^/@\s]*@/g, '//…@').replace(/[\x00-\x1f\x7f]+/g, ' ')
  return text.length > 200 ? text.slice(0, 200) + '…' : text
}

export interface SyncRequest {
  /** Tokens to take now. */
  want: number
  /** Successes since the last call: the shared rate recovers by them. */
  ups: number
  /** A rate limit was met since the last call: halve the shared rate. */
  slow: boolean
  /** A pause asked by the server, ms from now; 0 for none. */
  pauseMs: number
  /** Permits taken earlier and never spent: back into the bucket, as if never taken. */
  back: number
}

export interface SyncReply {
  granted: number
  /** ms until a token is worth asking for again (0 when granted or not asked). */
  wait: number
  /** ms the shared pause still lasts. */
  pauseLeft: number
  /** The shared rate now, requests per second. */
  rate: number
}

/** The script's answer, checked and bounded: it comes from outside. */
export function parseReply (reply: unknown, want: number): SyncReply {
  const list = Array.isArray(reply) ? reply.map(Number) : []
  if (list.length !== 4 || !list.every((n) => Number.isFinite(n) && n >= 0)) {
    throw new Error('Redis answered the bucket script with something else than four numbers')
  }
  const [granted, wait, pauseLeft, rate] = list as [number, number, number, number]
  return {
    granted: Math.min(Math.floor(granted), want),
    wait: Math.min(wait, MAX_WAIT),
    pauseLeft: Math.min(pauseLeft, MAX_WAIT),
    rate: rate / 1000
  }
}

export interface RedisBucketOptions {
  /** Redis is slow past this many ms: a command fails rather than wait longer. */
  timeout: number
  /** The longest pause this process keeps to (its maxRetryDelay); default an hour. */
  maxPause?: number
  onReady: () => void
  onError: (message: string) => void
  /** The connection ended (refused, dropped, or closed by the client after a failed handshake). */
  onEnd?: () => void
}

type ScriptCommand = (key: string, ...args: Array<string | number>) => Promise<unknown>

/**
 * One connection to Redis and the bucket script on it. The client library is
 * loaded here, when the first bucket is made: an application without
 * `redisUrl` never loads it. Commands never queue while the connection is
 * down and never take longer than `timeout`: the caller falls back instead.
 * Nothing here keeps a process alive: the connection is unref'd, and a lost one
 * is not retried by the client but by `reconnect`.
 */
export class RedisBucket {
  private readonly redis: Redis
  private readonly key: string
  private readonly rate: number
  private readonly burst: number
  private readonly url: string
  private readonly maxPause: number

  constructor (url: string, key: string, rate: number, burst: number, opts: RedisBucketOptions) {
    this.url = url
    this.key = key
    this.rate = rate
    this.burst = burst
    this.maxPause = Math.min(opts.maxPause ?? MAX_WAIT, MAX_WAIT)
    const { Redis: Client } = require('ioredis') as typeof import('ioredis')
    const options: RedisOptions = {
      connectionName: 'pino-bitrix24-workflow',
      commandTimeout: opts.timeout,
      connectTimeout: Math.max(opts.timeout, 1000),
      // disconnect() ends the socket, then waits this long (a ref'd timer) for it to close: with
      // Redis away, wrong-password or black-holed that is the whole wait. Nothing is owed to Redis.
      disconnectTimeout: 0,
      // The client's ready check (INFO) falls under commandTimeout: a Redis busy at start-up (a
      // loaded machine) fails it, and the client then drops a healthy connection. The first answer
      // to the bucket script tells readiness instead; SharedBudget waits connectTimeout for it.
      enableReadyCheck: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // RESP2 is what every Redis speaks; the script's answer is the same in both.
      protocol: 2,
      // No reconnect timer of the client's own: it would keep an application alive as
      // long as Redis is away. The caller reconnects (see reconnect) on a timer of its own.
      retryStrategy: () => null
    }
    this.redis = new Client(url, options)
    this.redis.defineCommand('bitrix24Bucket', { numberOfKeys: 1, lua: BUCKET_SCRIPT })
    this.redis.on('ready', opts.onReady)
    // Without a listener the client would print its errors itself, URL and all.
    this.redis.on('error', (err: Error) => opts.onError(cleanRedisMessage(String(err?.message), url)))
    this.redis.on('end', () => opts.onEnd?.())
    // The connection must not keep an in-process application alive.
    this.redis.on('connect', () => {
      (this.redis as unknown as { stream?: { unref?: () => void } }).stream?.unref?.()
    })
  }

  get ready (): boolean {
    return this.redis.status === 'ready'
  }

  /** Connects again once the connection has ended (the caller's timer paces the attempts). */
  reconnect (): void {
    // A failed attempt is also an 'error' event: the caller hears of it there.
    if (this.redis.status === 'end') this.redis.connect().catch(() => {})
  }

  /** One atomic step on the shared bucket; rejects (message cleaned) when Redis fails or is slow. */
  async sync (request: SyncRequest): Promise<SyncReply> {
    const command = (this.redis as unknown as { bitrix24Bucket: ScriptCommand }).bitrix24Bucket.bind(this.redis)
    let reply: unknown
    try {
      reply = await command(this.key, this.rate, this.burst, request.want, Math.min(request.ups, 1000), request.slow ? 1 : 0, Math.min(Math.max(0, Math.ceil(request.pauseMs)), MAX_WAIT), Math.min(request.back, this.burst), this.maxPause)
    } catch (err) {
      throw new Error(cleanRedisMessage(String((err as Error)?.message), this.url))
    }
    return parseReply(reply, request.want)
  }

  /** Drops the connection at once: nothing held here is worth waiting for at shutdown. */
  close (): void {
    this.redis.disconnect()
  }
}
