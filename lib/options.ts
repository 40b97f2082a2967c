import {
  Bitrix24TransportError,
  ERR_INSECURE_BASE_URL,
  ERR_INVALID_OPTION,
  ERR_MISSING_API_KEY
} from './errors'
import { deepFreeze } from './freeze'
import { DEFAULT_BASE_URL, OPTION_NAMES, OPTIONS, type OptionName, type Row, rowOf } from './option-table'
import { hidden, looksSecret, redactUrl } from './redact'
import { unknownOptionsError } from './unknown-options'
import { oneLine } from './reporter'
import { PREFIX } from './prefix'

export { DEFAULT_BASE_URL }

/**
 * Options of the transport. Plain data only: they cross into pino's worker by
 * structured clone. Each one is declared once, in lib/option-table.ts; the
 * comments below are generated from there by `npm run docs`.
 */
export interface Options {
  /** Vibe API key, `vibe_api_…` (personal) or `vibe_app_…` (app). Prefer the environment variable: command-line arguments are visible to other users in `ps`. Default: none; required. Env: BITRIX24_API_KEY. */
  apiKey?: string
  /** User session for an app key, sent as `Authorization: Bearer …`. Default: none. Env: BITRIX24_SESSION_TOKEN. */
  sessionToken?: string
  /** API origin; `https:` unless the host is loopback (127.0.0.0/8, ::1, localhost). Default: 'https://vibecode.bitrix24.tech'. Env: BITRIX24_BASE_URL. */
  baseUrl?: string
  /** HTTP(S) proxy for the API requests, `http://[user:password@]host:port`. Without it `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` are honoured. Its credentials are never echoed. Default: none (proxy env variables). */
  proxy?: string
  /** Share one request budget between processes through Redis: `redis://` or `rediss://[user:password@]host:port`. Its password is never echoed. Default: none. Env: BITRIX24_REDIS_URL. */
  redisUrl?: string
  /** Field of a log line that holds the workflow's event token. Default: 'eventToken'. */
  tokenKey?: string
  /** Field of a log line that completes the activity. Default: 'workflowEvent'. */
  eventKey?: string
  /** How long a token's oldest pending line waits before the token is ready to send; its entry is formed when its request can go, so under a shortfall lines pack into fuller entries. Default: 2000. Range: 0 to 3600000. */
  flushInterval?: number
  /** Largest entry, in UTF-8 bytes of `logMessage` (the Bitrix24 log column holds 64 KB). Default: 16384. Range: 256 to 65535. */
  maxEntryBytes?: number
  /** Log rows one workflow may get over its activity's whole life, the completion's included: rows come quickly at first and further apart as the activity ages, and entries grow (up to 60,000 bytes) rather than spend more. Bitrix24 keeps only the newest 50 rows of a workflow; `0` turns the budget off (for a portal without that limit). Default: 40. Range: 0 to 10000. Env: BITRIX24_MAX_ROWS. */
  maxRows?: number
  /** Requests in flight at once (never more than one per token). Default: 4. Range: 1 to 256. */
  concurrency?: number
  /** Deadline of one request: connect, headers and the whole answer body together. Default: 10000. Range: 100 to 600000. */
  requestTimeout?: number
  /** Longest wait for delivery at close (pino waits 10 s for its worker, so at most 9000). Default: 5000. Range: 0 to 9000. */
  closeTimeout?: number
  /** Template of a line: `{time}`, `{level}`, `{msg}`, `{fields}` or any field or dotted path. Default: '{time} {level} {msg}'. */
  messageFormat?: string
  /** Only these extra fields are shown; an empty list shows none. Default: all but the excluded ones. */
  include?: string[]
  /** Extra fields never shown, on top of pid, hostname, time, level, msg, v, the token key and the event key. Default: []. */
  exclude?: string[]
  /** Lowest level that reaches the workflow log: a label of the logger (custom levels work) or a number. Lines that carry their level as a label (`formatters.level`) are filtered too; a label the logger does not know is let through. Default: every level. */
  level?: string | number
  /** IANA time zone of `{time}`, e.g. `Europe/Berlin`: the zone your portal's users read the log in. Default: the process's local zone. Env: BITRIX24_TIME_ZONE. */
  timeZone?: string
  /** Stack frames of the error (the logger's `errorKey`, `err` by default) to show. Default: 0. Range: 0 to 100. */
  errorStackFrames?: number
  /** Keep characters outside the Basic Multilingual Plane (emoji) instead of replacing them with `�`. Default: false. */
  keepNonBmp?: boolean
  /** What a rate limit does to queued entries: `buffer` (wait) or `drop`. Default: 'buffer'. */
  onRateLimit?: 'buffer' | 'drop'
  /** Client-side pacing, requests per second shared by all tokens; `0` turns it off. Default: 2. Range: 0 to 10000. */
  maxRequestsPerSecond?: number
  /** Requests that may go at once before pacing applies. Default: 5. Range: 1 to 10000. */
  burst?: number
  /** Retries of an entry after its first attempt, for faults (rate-limit answers do not count). Default: 5. Range: 0 to 100. */
  maxRetries?: number
  /** Cap of one retry delay, also of a delay the server asks for. Default: 30000. Range: 1 to 3600000. */
  maxRetryDelay?: number
  /** Retry a request that may have landed (at-least-once: an entry may be written twice). Default: true. */
  retryAmbiguous?: boolean
  /** Cap of queued text; over it the oldest lines are dropped. At least 64 KiB, so that it holds the largest entry. Default: 8388608. Range: 65536 to 2147483648. */
  maxBufferedBytes?: number
  /** Cap of tokens with queued data, and of remembered dead or completed tokens. Default: 10000. Range: 1 to 10000000. */
  maxTokens?: number
  /** Emit `bitrix24:stats` this often while the counters change; `0`: only at close. Default: 0. Range: 0 to 86400000. */
  statsInterval?: number
  /** Directory of a disk spool (needs the `lmdb` package): every accepted line and completion is kept there until it is settled, and a later start with the same directory delivers what a killed process left. Processes may share the directory; each owns its own spool. Default: none (memory only). Env: BITRIX24_SPOOL_DIR. */
  spoolDir?: string
  /** Cap of the spool; over it the oldest lines leave the spool (counted as `unspooled`) and are kept in memory only. Default: 67108864. Range: 65536 to 1099511627776. */
  spoolMaxBytes?: number
  /** Lines and completions found in a spool older than this are not replayed; they are dropped as `expired`. Default: 86400000. Range: 1000 to 2592000000. */
  spoolMaxAge?: number
  /** Write nothing to stderr (for tests and noisy environments); events and stats still flow. Default: false. Env: BITRIX24_QUIET. */
  quiet?: boolean
}

/** The options after validation, defaults and environment applied. */
export interface Config {
  apiKey: string
  sessionToken: string | undefined
  baseUrl: string
  /** undefined: none given, the proxy env variables apply. */
  proxy: string | undefined
  redisUrl: string | undefined
  tokenKey: string
  eventKey: string
  flushInterval: number
  maxEntryBytes: number
  maxRows: number
  concurrency: number
  requestTimeout: number
  closeTimeout: number
  messageFormat: string
  include: string[] | undefined
  exclude: string[]
  level: string | number | undefined
  /** undefined: the process's local zone. */
  timeZone: string | undefined
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
  /** undefined: no spool, memory only. */
  spoolDir: string | undefined
  spoolMaxBytes: number
  spoolMaxAge: number
  quiet: boolean
}

/**
 * Every option of Options has a row of its own type in OPTIONS, and every row an
 * option: a row missing, extra or of another type fails to compile here.
 */
type Table = { readonly [K in keyof Options]-?: Row<NonNullable<Options[K]>> } & { readonly [K in Exclude<OptionName, keyof Options>]: never }
const TABLE: Table = OPTIONS

type WithDefault = { [K in OptionName]: typeof OPTIONS[K] extends { default: unknown } ? K : never }[OptionName]

/** The default of every option that has one, read off the declarations; frozen. */
export const defaults: { readonly [K in WithDefault]: Config[K] extends Array<infer T> ? readonly T[] : Config[K] } = deepFreeze(Object.fromEntries(
  OPTION_NAMES.flatMap((name) => 'default' in OPTIONS[name] ? [[name, (OPTIONS[name] as Row<unknown>).default]] : [])
)) as never

const SECRET_OPTIONS = OPTION_NAMES.filter((name) => TABLE[name].kind === 'secret')
// Options given as a string are most likely a key passed where an object belongs.
const SECRET = new Set<string>(['options', ...SECRET_OPTIONS])
// A URL may carry credentials or a key in its query: shown without either.
const URL_KINDS = new Set(['origin', 'proxy', 'redis'])

/**
 * Describes a given value for an error message, without ever echoing a
 * secret, and as one line without terminal controls. Every value an error
 * message shows goes through here.
 */
export function describe (name: string, value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') {
    if (SECRET.has(name)) return `a string of ${value.length} characters`
    if (looksSecret(value)) return hidden(value)
    // A URL may carry credentials or a key in its query: show neither.
    const kind = (OPTIONS as Record<string, Row<unknown>>)[name]?.kind
    const shown = kind !== undefined && URL_KINDS.has(kind) ? redactUrl(value) : value
    // JSON escapes C0 controls only: C1 controls (U+009B is a CSI), line separators
    // and bidi controls would still reach a terminal through stderr.
    return oneLine(JSON.stringify(shown.length > 60 ? shown.slice(0, 60) + '…' : shown))
  }
  if (typeof value === 'number' || typeof value === 'boolean') return SECRET.has(name) ? `a value of type ${typeof value}` : String(value)
  return `a value of type ${typeof value}`
}

/** Where a value came from: the options, or the named environment variable. */
type Source = string | undefined

function subject (name: string, env: Source): string {
  return env === undefined ? `option "${name}"` : `env ${env} (option "${name}")`
}

function fail (code: typeof ERR_INVALID_OPTION | typeof ERR_INSECURE_BASE_URL, name: string, env: Source, requirement: string, value: unknown): Bitrix24TransportError {
  return new Bitrix24TransportError(
    code,
    `${PREFIX}${subject(name, env)} must ${requirement}, got ${describe(name, value)}`,
    name,
    env
  )
}

function invalid (name: string, env: Source, expected: string, value: unknown): Bitrix24TransportError {
  return fail(ERR_INVALID_OPTION, name, env, `be ${expected}`, value)
}

/** What a valid value of the row is, as error messages and --help say it. */
export function expectation (row: Row<unknown>): string {
  switch (row.kind) {
    case 'secret': return 'a string of printable ASCII characters without spaces'
    case 'origin': return 'an absolute URL such as https://vibecode.bitrix24.tech'
    case 'integer': return `an integer from ${row.min} to ${row.max}`
    case 'number': return `a number from ${row.min} to ${row.max}`
    case 'boolean': return 'true or false'
    case 'list': return 'an array of non-empty strings'
    case 'level': return 'a level label or number'
    case 'choice': return (row.choices as readonly string[]).map((c) => JSON.stringify(c)).join(' or ')
    case 'timeZone': return 'an IANA time zone name such as "Europe/Berlin"'
    case 'proxy': return 'an http: or https: URL such as http://proxy.example.com:3128'
    case 'redis': return 'a redis: or rediss: URL such as redis://127.0.0.1:6379'
    default: return 'a non-empty string'
  }
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/

function parseUrl (name: string, env: Source, row: Row<unknown>, value: string): URL {
  try {
    return new URL(value)
  } catch {
    throw invalid(name, env, expectation(row), value)
  }
}

function origin (name: string, env: Source, row: Row<unknown>, value: string): string {
  const url = parseUrl(name, env, row, value)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(name, env, 'an https: URL', value)
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) {
    // The API key travels in a header: plain HTTP is only safe on this machine.
    throw fail(ERR_INSECURE_BASE_URL, name, env, 'use https: unless its host is loopback (127.0.0.0/8, ::1, localhost)', value)
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid(name, env, 'a URL without query, fragment or credentials', value)
  }
  return url.origin + url.pathname.replace(/\/+$/, '')
}

/**
 * Whether a URL's credentials can be percent-decoded: a proxy agent decodes
 * them to send them, and throws a bare URIError at start-up for `%zz`.
 */
export function decodableCredentials (url: URL): boolean {
  try {
    decodeURIComponent(url.username)
    decodeURIComponent(url.password)
    return true
  } catch {
    return false
  }
}

function serviceUrl (name: string, env: Source, row: Row<unknown>, value: string, protocols: string[]): string {
  const url = parseUrl(name, env, row, value)
  if (!protocols.includes(url.protocol) || url.hostname === '' || url.hash !== '') {
    throw invalid(name, env, expectation(row), value)
  }
  if (!decodableCredentials(url)) throw invalid(name, env, expectation(row) + ' with percent-encoded credentials', value)
  return value
}

function timeZone (name: string, env: Source, row: Row<unknown>, value: string): string {
  try {
    // Canonical spelling: 'utc' becomes 'UTC', 'europe/berlin' 'Europe/Berlin'.
    return new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone
  } catch {
    throw invalid(name, env, expectation(row), value)
  }
}

/** Checks one given value against its row; returns it as Config holds it. */
function check (name: OptionName, row: Row<unknown>, value: unknown, env: Source): unknown {
  const bad = (): Bitrix24TransportError => invalid(name, env, expectation(row), value)
  switch (row.kind) {
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || !(row.kind === 'integer' ? Number.isInteger(value) : Number.isFinite(value)) ||
        value < (row.min as number) || value > (row.max as number)) throw bad()
      return value
    case 'boolean':
      if (typeof value !== 'boolean') throw bad()
      return value
    case 'list':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) throw bad()
      return [...value]
    case 'level':
      if (!(typeof value === 'number' && Number.isFinite(value)) && !(typeof value === 'string' && value.length > 0)) throw bad()
      return value
    case 'choice':
      if (!(row.choices as readonly unknown[]).includes(value)) throw bad()
      return value
    case 'secret':
      // Keys and session tokens are printable ASCII: anything else cannot be sent in a
      // header (a pasted key with a trailing newline or a zero-width space is the usual cause).
      if (typeof value !== 'string' || !/^[\x21-\x7e]+$/.test(value)) {
        throw invalid(name, env, expectation(row) + (env === undefined ? ` (or env ${row.env})` : ''), value)
      }
      return value
  }
  if (typeof value !== 'string' || value.length === 0) throw invalid(name, env, 'a non-empty string', value)
  switch (row.kind) {
    case 'origin': return origin(name, env, row, value)
    case 'proxy': return serviceUrl(name, env, row, value, ['http:', 'https:'])
    case 'redis': return serviceUrl(name, env, row, value, ['redis:', 'rediss:'])
    case 'timeZone': return timeZone(name, env, row, value)
    default: return value
  }
}

/** An environment variable's text as the value of its option. */
function fromEnv (name: OptionName, row: Row<unknown>, text: string, env: string): unknown {
  if (row.kind !== 'boolean') return text
  if (text === 'true' || text === '1') return true
  if (text === 'false' || text === '0') return false
  throw invalid(name, env, 'true, false, 1 or 0', text)
}

/**
 * A key or session token given to another option (or a URL holding one) would be
 * echoed by that option's error: refused first, and described only.
 */
function refuseMisplacedSecret (opts: Record<string, unknown>, env: NodeJS.ProcessEnv, secrets: Array<string | undefined>): void {
  for (const name of OPTION_NAMES) {
    const row: Row<unknown> = OPTIONS[name]
    if (row.kind === 'secret') continue
    const value = opts[name] ?? (row.env === undefined ? undefined : env[row.env])
    const texts = typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((v) => typeof v === 'string') : []
    const text = texts.find((v) => looksSecret(v, secrets))
    if (text !== undefined) {
      throw new Bitrix24TransportError(ERR_INVALID_OPTION, `${PREFIX}option "${name}" must not hold an API key or session token, got ${hidden(text)}`, name)
    }
  }
}

/**
 * The key and session token as parseOptions will take them: from the options,
 * or (for one not given or empty) from their environment variables. Never to be
 * echoed through another option or flag.
 */
export function configuredSecrets (opts: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv): Array<string | undefined> {
  return SECRET_OPTIONS.map((name) => {
    const given = opts[name]
    return typeof given === 'string' && given !== '' ? given : env[rowOf(name).env as string]
  })
}

/**
 * Validates options and applies environment fallbacks and defaults, all as
 * lib/option-table.ts declares them. Throws a Bitrix24TransportError naming
 * the option (and the environment variable when the value came from there),
 * what was expected and what was given; for a name no option has,
 * `ERR_BITRIX24_UNKNOWN_OPTION` with the nearest option's name.
 */
export function parseOptions (input: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  if (input !== undefined && (input === null || typeof input !== 'object' || Array.isArray(input))) {
    throw invalid('options', undefined, 'an object', input)
  }
  const unknown = unknownOptionsError(input)
  if (unknown !== undefined) throw unknown
  const opts = (input ?? {}) as Record<string, unknown>
  refuseMisplacedSecret(opts, env, configuredSecrets(opts, env))
  const config: Record<string, unknown> = {}
  for (const name of OPTION_NAMES) {
    const row: Row<unknown> = OPTIONS[name]
    const given = opts[name]
    // An empty secret falls back to the environment: `apiKey: process.env.X` with X unset-but-empty.
    if (given !== undefined && !(row.kind === 'secret' && given === '')) {
      config[name] = check(name, row, given, undefined)
      continue
    }
    const text = row.env === undefined ? undefined : env[row.env]
    if (text !== undefined && text !== '') {
      config[name] = check(name, row, fromEnv(name, row, text, row.env as string), row.env)
    } else if (row.required === true) {
      throw new Bitrix24TransportError(
        ERR_MISSING_API_KEY,
        `${PREFIX}option "${name}" must be a Vibe API key (or env ${row.env}), got nothing`,
        name
      )
    } else {
      config[name] = Array.isArray(row.default) ? [...row.default] : row.default
    }
  }
  return config as unknown as Config
}
