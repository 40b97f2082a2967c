/**
 * One table that maps every documented Vibe API answer to what delivery does
 * about it. The README's table of stop codes is generated from it
 * (`npm run docs`).
 */
import { deepFreeze } from './freeze'

export type Action =
  /** Delivered. */
  | 'ok'
  /** Pause all sending for the key, keep (or, in drop mode, drop) the entry. */
  | 'rateLimited'
  /** Fault: retry the entry with backoff, up to maxRetries. */
  | 'retry'
  /** The key cannot write: stop sending, drop everything. */
  | 'keyFailure'
  /** This event token is invalid, expired or used: drop its queue. */
  | 'tokenFailure'
  /** This entry was refused: drop it, go on. */
  | 'rejected'

export interface Rule { action: Action, advice: string }

// Frozen: an app that changed it would change delivery for every user of the module.
export const RULES: Readonly<Record<string, Readonly<Rule>>> = deepFreeze({
  RATE_LIMITED: { action: 'rateLimited', advice: 'the key\'s request rate was exceeded (lower maxRequestsPerSecond if this repeats)' },
  QUEUE_TIMEOUT: { action: 'rateLimited', advice: 'the API\'s queue timed out' },
  // Delivery says how it retries: the advice only says what happened.
  BITRIX_UNAVAILABLE: { action: 'retry', advice: 'Bitrix24 is unavailable (or the portal\'s own rate limit was hit)' },
  INTERNAL_ERROR: { action: 'retry', advice: 'the API failed internally' },
  MISSING_API_KEY: { action: 'keyFailure', advice: 'no API key reached the server; set option apiKey or env BITRIX24_API_KEY' },
  INVALID_API_KEY: { action: 'keyFailure', advice: 'the API key is unknown, revoked or expired; issue a new key and set apiKey' },
  INVALID_APP_KEY: { action: 'keyFailure', advice: 'an app key needs a user session: set option sessionToken (env BITRIX24_SESSION_TOKEN)' },
  TOKEN_MISSING: { action: 'keyFailure', advice: 'the key has no connected Bitrix24 portal; connect the portal to the key' },
  TOKEN_EXPIRED: { action: 'keyFailure', advice: 'the user session expired; reauthorize (/v1/oauth/authorize) and set the new sessionToken' },
  SCOPE_DENIED: { action: 'keyFailure', advice: 'the key lacks the bizproc scope; issue a key with the bizproc scope' },
  OAUTH_REQUIRED: { action: 'keyFailure', advice: 'this call needs an app key with a user session, not a personal key' },
  WRITE_BLOCKED_READONLY_KEY: { action: 'keyFailure', advice: 'the key is read-only; issue a key that may write' },
  BITRIX_ACCESS_DENIED: { action: 'tokenFailure', advice: 'Bitrix24 refused the event token: it is invalid, expired or already used (the activity was completed, timed out or cancelled)' },
  MISSING_PARAMS: { action: 'rejected', advice: 'the server found eventToken or logMessage missing' },
  BITRIX_ERROR: { action: 'rejected', advice: 'Bitrix24 refused the entry' }
})

export interface Verdict {
  action: Action
  /** HTTP status, or 0 when no answer came. */
  status: number
  /** The server's error code, or one of ours for network trouble (e.g. 'ECONNREFUSED'). */
  code: string
  advice: string
  message: string | undefined
  hint: string | undefined
  warning: string | undefined
  /** Delay the server asked for, ms. */
  retryAfter: number | undefined
  /** The request may have landed although it failed: a retry may write it twice. */
  ambiguous: boolean
  /** What the X-RateLimit headers say is left of the key's window, when the server sent all three. */
  rateLimit: RateLimitWindow | undefined
}

export interface RateLimitWindow {
  limit: number
  remaining: number
  /** Clock ms when the window resets. */
  resetAt: number
}

/** The X-RateLimit-* header values as received. */
export interface RateLimitHeaders {
  limit: string | undefined
  remaining: string | undefined
  reset: string | undefined
}

/** The request outlived requestTimeout (connect, headers and body together) and was aborted. */
export const ERR_DEADLINE = 'ERR_BITRIX24_REQUEST_DEADLINE'

/** The client was closed (close(), closeTimeout) with the request in flight, or before it was made. */
export const ERR_DESTROYED = 'ERR_BITRIX24_DESTROYED'

/** The deadline (requestTimeout) came before the request's connection was made: nothing was sent. */
export const ERR_NOT_CONNECTED = 'ERR_BITRIX24_NOT_CONNECTED'

/** The payload could not become JSON (e.g. return values nested too deep): nothing was sent. */
export const ERR_SERIALIZE = 'ERR_BITRIX24_SERIALIZE'

/** The proxy answered 407 to CONNECT: its credentials are wrong or missing. Nothing reached the API. */
export const ERR_PROXY_AUTH = 'ERR_BITRIX24_PROXY_AUTH'

/** The proxy answered CONNECT with another refusal (403, 502…). Nothing reached the API. */
export const ERR_PROXY_REFUSED = 'ERR_BITRIX24_PROXY_REFUSED'

// A TLS handshake that failed (a certificate self-signed, expired, for another
// host; a server that does not speak TLS) fails the same way every time.
const TLS_FAILURE = /CERT|SELF_SIGNED|^UNABLE_TO_|^ERR_TLS_|^ERR_SSL_|^HOSTNAME_MISMATCH$/

// The request itself cannot be built: a header value HTTP cannot carry (a key pasted
// with an invisible character). Node's HTTP client says ERR_INVALID_CHAR, undici's
// proxy agents UND_ERR_INVALID_ARG.
const UNBUILDABLE = new Set(['ERR_INVALID_CHAR', 'ERR_HTTP_INVALID_HEADER_VALUE', 'UND_ERR_INVALID_ARG'])

/**
 * Local failures that no retry can mend: the payload cannot be serialised, the
 * request cannot be built (a header value HTTP cannot carry), the server's
 * certificate is not trusted, or the proxy refuses the tunnel (a configuration
 * error, like the certificate). Nothing was sent; retrying would only spend time and requests.
 */
export function cannotSucceed (code: string): boolean {
  return code === ERR_SERIALIZE || UNBUILDABLE.has(code) || code === ERR_PROXY_AUTH || code === ERR_PROXY_REFUSED || TLS_FAILURE.test(code)
}

export type Outcome =
  | { status: number, body: string, retryAfter: string | undefined, rateLimit?: RateLimitHeaders }
  | { error: { code?: string, name?: string, message?: string }, sent: boolean }

function byStatus (status: number): Action {
  if (status === 429) return 'rateLimited'
  if (status === 401) return 'keyFailure'
  if (status >= 500 || status === 408) return 'retry'
  return 'rejected'
}

/** Seconds or an HTTP date (RFC 9110 §10.2.3) to ms from now; undefined when unusable. */
export function parseRetryAfter (value: unknown, now: number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined
  if (typeof value !== 'string' || value.trim() === '') return undefined
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value) * 1000
  // An HTTP date names its day and month; Date.parse alone would take '-1' for a date in 2001.
  if (!/[a-z]{3}/i.test(value)) return undefined
  const date = Date.parse(value)
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined
}

const COUNT = /^\s*\d{1,15}\s*$/

/**
 * X-RateLimit-Limit / -Remaining / -Reset to numbers; undefined unless all three
 * are plain counts. Reset is read as epoch ms, epoch seconds, or seconds from
 * now, by its size: servers differ, and the spec does not say.
 */
export function parseRateLimit (headers: RateLimitHeaders | undefined, now: number): RateLimitWindow | undefined {
  if (headers === undefined) return undefined
  const { limit, remaining, reset } = headers
  if (limit === undefined || remaining === undefined || reset === undefined) return undefined
  if (!COUNT.test(limit) || !COUNT.test(remaining) || !COUNT.test(reset)) return undefined
  const r = Number(reset)
  const resetAt = r > 1e12 ? r : r > 1e9 ? r * 1000 : now + r * 1000
  return { limit: Number(limit), remaining: Number(remaining), resetAt }
}

interface Envelope {
  success?: unknown
  error?: { code?: unknown, message?: unknown, hint?: unknown, warning?: unknown, retryAfter?: unknown }
}

// The server's own texts are kept only this long: they are stored with a key
// failure and passed on in events and stderr, so a hostile answer must not make them large.
const MAX_CODE = 64
const MAX_TEXT = 300

function short (v: string, max: number): string {
  return v.length > max ? v.slice(0, max) + '…' : v
}

function text (v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? short(v, MAX_TEXT) : undefined
}

function localAdvice (code: string, message: string | undefined): string {
  if (code === ERR_PROXY_AUTH) return `proxy authentication failed (${message}): a configuration error; check the user and password of option proxy (or HTTPS_PROXY); nothing reached the API`
  if (code === ERR_PROXY_REFUSED) return `the proxy refused the connection to the API (${message}): a configuration error; check option proxy (or HTTPS_PROXY, NO_PROXY); nothing reached the API`
  if (code === ERR_SERIALIZE) return 'the entry could not be serialised as JSON (nested too deep?); nothing was sent'
  if (UNBUILDABLE.has(code)) return 'the request could not be built (a header value that cannot be sent?); nothing was sent'
  return 'the server\'s TLS certificate was not accepted; nothing was sent. Check baseUrl, or give Node the CA (NODE_EXTRA_CA_CERTS)'
}

export function classify (outcome: Outcome, now: number): Verdict {
  if ('error' in outcome) {
    const code = short(outcome.error.code ?? outcome.error.name ?? 'NETWORK_ERROR', MAX_CODE)
    const local = !outcome.sent && cannotSucceed(code)
    return {
      action: local ? 'rejected' : 'retry',
      status: 0,
      code,
      advice: local ? localAdvice(code, outcome.error.message) : code === ERR_DEADLINE ? 'no answer within requestTimeout; the request may have landed' : outcome.sent ? 'the connection failed after the request was sent' : 'the server could not be reached',
      message: outcome.error.message,
      hint: undefined,
      warning: undefined,
      retryAfter: undefined,
      ambiguous: outcome.sent,
      rateLimit: undefined
    }
  }
  const { status } = outcome
  let envelope: Envelope = {}
  try {
    const parsed: unknown = JSON.parse(outcome.body)
    if (parsed !== null && typeof parsed === 'object') envelope = parsed as Envelope
  } catch {
    // An unparsable body (a proxy's HTML page, say) is classified by its status alone.
  }
  const error = envelope.error !== null && typeof envelope.error === 'object' ? envelope.error : {}
  const ok = status >= 200 && status < 300 && envelope.success !== false
  const code = ok ? 'OK' : typeof error.code === 'string' && error.code !== '' ? short(error.code, MAX_CODE) : `HTTP_${status}`
  const rule = RULES[code]
  const fromHeader = parseRetryAfter(outcome.retryAfter, now)
  return {
    action: ok ? 'ok' : rule?.action ?? byStatus(status),
    status,
    code,
    advice: rule?.advice ?? `the server answered HTTP ${status}`,
    message: text(error.message),
    hint: text(error.hint),
    warning: text(error.warning),
    retryAfter: fromHeader ?? parseRetryAfter(error.retryAfter, now),
    ambiguous: false,
    rateLimit: parseRateLimit(outcome.rateLimit, now)
  }
}
