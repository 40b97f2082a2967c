import {
  Bitrix24TransportError,
  ERR_INSECURE_BASE_URL,
  ERR_INVALID_OPTION,
  ERR_MISSING_API_KEY
} from './errors'

/** Options of the transport. Plain data only: they cross into pino's worker by structured clone. */
export interface Options {
  /** Vibe API key (`vibe_api_…` or `vibe_app_…`). Env: BITRIX24_API_KEY. */
  apiKey?: string
  /** User session token sent as `Authorization: Bearer` with an app key. Env: BITRIX24_SESSION_TOKEN. */
  sessionToken?: string
  /** API origin. Env: BITRIX24_BASE_URL. Default https://vibecode.bitrix24.tech */
  baseUrl?: string
  /** Field of a log line that holds the workflow's event token. Default 'eventToken'. */
  tokenKey?: string
  /** Field of a log line that completes the activity. Default 'workflowEvent'. */
  eventKey?: string
  /** ms a token's first pending line may wait before its entry is sent. Default 2000. */
  flushInterval?: number
  /** Largest entry, in UTF-8 bytes of `logMessage`. Default 16384. */
  maxEntryBytes?: number
  /** Requests in flight at once (never more than one per token). Default 4. */
  concurrency?: number
  /** Connect, headers and body timeout of one request, ms. Default 10000. */
  requestTimeout?: number
  /** Longest time `close()` waits for delivery, ms. Default 5000. */
  closeTimeout?: number
  /** Template of one line. Default '{time} {level} {msg}'. */
  messageFormat?: string
  /** Only these extra fields are shown (default: all but the excluded ones). */
  include?: string[]
  /** Extra fields never shown, on top of pid, hostname, time, level, msg, v and the token key. */
  exclude?: string[]
  /** Lowest level (label or number) that reaches the workflow log. Default: every level. */
  level?: string | number
  /** Stack frames of `err` to show. Default 0. */
  errorStackFrames?: number
  /** Keep characters outside the Basic Multilingual Plane (emoji). Default false: replaced. */
  keepNonBmp?: boolean
  /** What a rate limit does to queued entries: 'buffer' (wait) or 'drop'. Default 'buffer'. */
  onRateLimit?: 'buffer' | 'drop'
  /** Client-side pacing, requests per second shared by all tokens; 0 = off. Default 2. */
  maxRequestsPerSecond?: number
  /** Requests that may go at once before pacing applies. Default 5. */
  burst?: number
  /** Attempts per entry after the first, for faults. Default 5. */
  maxRetries?: number
  /** Cap of one retry delay, ms. Default 30000. */
  maxRetryDelay?: number
  /** Retry a request that may have landed (at-least-once). Default true. */
  retryAmbiguous?: boolean
  /** Cap of queued text, bytes. Default 8 MiB. */
  maxBufferedBytes?: number
  /** Cap of tokens with queued data, and of remembered dead tokens. Default 10000. */
  maxTokens?: number
  /** Emit `bitrix24:stats` this often (ms) while counters change; 0 = only at close. Default 0. */
  statsInterval?: number
  /** `redis://` or `rediss://` URL: every process on this key and base URL shares one request budget there. Env: BITRIX24_REDIS_URL. */
  redisUrl?: string
}

/** The options after validation, defaults and environment applied. */
export interface Config {
  apiKey: string
  sessionToken: string | undefined
  baseUrl: string
  tokenKey: string
  eventKey: string
  flushInterval: number
  maxEntryBytes: number
  concurrency: number
  requestTimeout: number
  closeTimeout: number
  messageFormat: string
  include: string[] | undefined
  exclude: string[]
  level: string | number | undefined
  errorStackFrames: number
  keepNonBmp: boolean
  onRateLimit: 'buffer' | 'drop'
  maxRequestsPerSecond: number
  burst: number
  maxRetries: number
  maxRetryDelay: number
  retryAmbiguous: boolean
  maxBufferedBytes: number
  maxTokens: number
  statsInterval: number
  redisUrl: string | undefined
}

export const DEFAULT_BASE_URL = 'https://vibecode.bitrix24.tech'

export const defaults = {
  tokenKey: 'eventToken',
  eventKey: 'workflowEvent',
  // 2 s: a workflow log is read by people, so a second or two of delay costs
  // nothing, while fewer entries matter twice: Bitrix24 keeps only the newest
  // 50 rows of a workflow, and a portal drains only 2 requests/s.
  flushInterval: 2000,
  maxEntryBytes: 16384,
  concurrency: 4,
  requestTimeout: 10000,
  // pino's exit hook waits at most 10 s for the worker; stay well inside it.
  closeTimeout: 5000,
  messageFormat: '{time} {level} {msg}',
  errorStackFrames: 0,
  keepNonBmp: false,
  onRateLimit: 'buffer' as const,
  maxRequestsPerSecond: 2,
  burst: 5,
  maxRetries: 5,
  maxRetryDelay: 30000,
  retryAmbiguous: true,
  maxBufferedBytes: 8 * 1024 * 1024,
  maxTokens: 10000,
  statsInterval: 0
}

// The Bitrix24 log column is a 64 KB TEXT: an entry above that would be cut by the database.
const MAX_ENTRY_BYTES = 65535
// Options given as a string are most likely a key passed where an object belongs.
const SECRET = new Set(['apiKey', 'sessionToken', 'options'])

/** Describes a given value for an error message, without ever echoing a secret. */
export function describe (name: string, value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') {
    if (SECRET.has(name)) return `a string of ${value.length} characters`
    // A URL may carry credentials or a key in its query: show neither.
    // A Redis URL that does not parse may still hold a password anywhere before its last '@'.
    const shown = name === 'baseUrl'
      ? value.replace(/\/\/[^/@]*@/, '//…@').replace(/[?#].*$/, '?…')
      : name === 'redisUrl' ? value.replace(/^([a-z][a-z0-9+.-]*:\/*)?.*@/i, '$1…@').replace(/[?#].*$/, '?…') : value
    return JSON.stringify(shown.length > 60 ? shown.slice(0, 60) + '…' : shown)
  }
  if (typeof value === 'number' || typeof value === 'boolean') return SECRET.has(name) ? `a value of type ${typeof value}` : String(value)
  return `a value of type ${typeof value}`
}

function invalid (name: string, expected: string, value: unknown): Bitrix24TransportError {
  return new Bitrix24TransportError(
    ERR_INVALID_OPTION,
    `pino-bitrix24-workflow: option "${name}" must be ${expected}, got ${describe(name, value)}`,
    name
  )
}

function numeric (opts: Options, name: keyof Options, min: number, max: number, fallback: number, whole: boolean): number {
  const value = opts[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(whole ? Number.isInteger(value) : Number.isFinite(value)) || value < min || value > max) {
    throw invalid(name, `${whole ? 'an integer' : 'a number'} from ${min} to ${max}`, value)
  }
  return value
}

function integer (opts: Options, name: keyof Options, min: number, max: number, fallback: number): number {
  return numeric(opts, name, min, max, fallback, true)
}

function number (opts: Options, name: keyof Options, min: number, max: number, fallback: number): number {
  return numeric(opts, name, min, max, fallback, false)
}

function boolean (opts: Options, name: keyof Options, fallback: boolean): boolean {
  const value = opts[name]
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalid(name, 'true or false', value)
  return value
}

function string (opts: Options, name: keyof Options, fallback: string): string {
  const value = opts[name]
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) throw invalid(name, 'a non-empty string', value)
  return value
}

function stringList (opts: Options, name: keyof Options): string[] | undefined {
  const value = opts[name]
  if (value === undefined) return undefined
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw invalid(name, 'an array of non-empty strings', value)
  }
  return value
}

function secret (value: unknown, name: string, env: string): string | undefined {
  if (value === undefined || value === '') return undefined
  // Keys and session tokens are printable ASCII: anything else cannot be sent in a
  // header (a pasted key with a trailing newline or a zero-width space is the usual cause).
  if (typeof value !== 'string' || !/^[\x21-\x7e]+$/.test(value)) {
    throw invalid(name, `a string of printable ASCII characters without spaces (or env ${env})`, value)
  }
  return value
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/

function baseUrl (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw invalid('baseUrl', 'an absolute URL such as https://vibecode.bitrix24.tech', value)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalid('baseUrl', 'an https: URL', value)
  }
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) {
    // The API key travels in a header: plain HTTP is only safe on this machine.
    throw new Bitrix24TransportError(
      ERR_INSECURE_BASE_URL,
      `pino-bitrix24-workflow: option "baseUrl" must use https: unless its host is loopback (127.0.0.0/8, ::1, localhost), got ${describe('baseUrl', value)}`,
      'baseUrl'
    )
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid('baseUrl', 'a URL without query, fragment or credentials', value)
  }
  return url.origin + url.pathname.replace(/\/+$/, '')
}

function redisUrl (value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined
  let url: URL | undefined
  try {
    url = typeof value === 'string' ? new URL(value) : undefined
  } catch {}
  if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    throw invalid('redisUrl', 'a redis:// or rediss:// URL (or env BITRIX24_REDIS_URL)', value)
  }
  return value as string
}

/**
 * Validates options and applies environment fallbacks and defaults. Throws a
 * Bitrix24TransportError naming the option, what was expected and what was given.
 */
export function parseOptions (input: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  if (input !== undefined && (input === null || typeof input !== 'object' || Array.isArray(input))) {
    throw invalid('options', 'an object', input)
  }
  const opts = (input ?? {}) as Options

  const apiKey = secret(opts.apiKey, 'apiKey', 'BITRIX24_API_KEY') ?? secret(env.BITRIX24_API_KEY, 'apiKey', 'BITRIX24_API_KEY')
  if (apiKey === undefined) {
    throw new Bitrix24TransportError(
      ERR_MISSING_API_KEY,
      'pino-bitrix24-workflow: option "apiKey" must be a Vibe API key (or env BITRIX24_API_KEY), got nothing',
      'apiKey'
    )
  }
  const sessionToken = secret(opts.sessionToken, 'sessionToken', 'BITRIX24_SESSION_TOKEN') ??
    secret(env.BITRIX24_SESSION_TOKEN, 'sessionToken', 'BITRIX24_SESSION_TOKEN')

  const onRateLimit = opts.onRateLimit === undefined ? defaults.onRateLimit : opts.onRateLimit
  if (onRateLimit !== 'buffer' && onRateLimit !== 'drop') {
    throw invalid('onRateLimit', '"buffer" or "drop"', onRateLimit)
  }

  const level = opts.level
  if (level !== undefined && !(typeof level === 'number' && Number.isFinite(level)) &&
    !(typeof level === 'string' && level.length > 0)) {
    throw invalid('level', 'a level label or number', level)
  }

  const maxEntryBytes = integer(opts, 'maxEntryBytes', 256, MAX_ENTRY_BYTES, defaults.maxEntryBytes)
  // At least 64 KiB, so that it always holds an entry of the largest maxEntryBytes.
  const maxBufferedBytes = integer(opts, 'maxBufferedBytes', 65536, 2 ** 31, defaults.maxBufferedBytes)

  return {
    apiKey,
    sessionToken,
    baseUrl: baseUrl(string(opts, 'baseUrl', env.BITRIX24_BASE_URL || DEFAULT_BASE_URL)),
    tokenKey: string(opts, 'tokenKey', defaults.tokenKey),
    eventKey: string(opts, 'eventKey', defaults.eventKey),
    flushInterval: integer(opts, 'flushInterval', 0, 3600000, defaults.flushInterval),
    maxEntryBytes,
    concurrency: integer(opts, 'concurrency', 1, 256, defaults.concurrency),
    requestTimeout: integer(opts, 'requestTimeout', 100, 600000, defaults.requestTimeout),
    closeTimeout: integer(opts, 'closeTimeout', 0, 9000, defaults.closeTimeout),
    messageFormat: string(opts, 'messageFormat', defaults.messageFormat),
    include: stringList(opts, 'include'),
    exclude: stringList(opts, 'exclude') ?? [],
    level,
    errorStackFrames: integer(opts, 'errorStackFrames', 0, 100, defaults.errorStackFrames),
    keepNonBmp: boolean(opts, 'keepNonBmp', defaults.keepNonBmp),
    onRateLimit,
    maxRequestsPerSecond: number(opts, 'maxRequestsPerSecond', 0, 10000, defaults.maxRequestsPerSecond),
    burst: integer(opts, 'burst', 1, 10000, defaults.burst),
    maxRetries: integer(opts, 'maxRetries', 0, 100, defaults.maxRetries),
    maxRetryDelay: integer(opts, 'maxRetryDelay', 1, 3600000, defaults.maxRetryDelay),
    retryAmbiguous: boolean(opts, 'retryAmbiguous', defaults.retryAmbiguous),
    maxBufferedBytes,
    maxTokens: integer(opts, 'maxTokens', 1, 10000000, defaults.maxTokens),
    statsInterval: integer(opts, 'statsInterval', 0, 86400000, defaults.statsInterval),
    redisUrl: redisUrl(opts.redisUrl ?? env.BITRIX24_REDIS_URL)
  }
}
