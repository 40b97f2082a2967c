import type { Kind, OptionName, OPTIONS, Row } from './option-table'

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

/**
 * Every option of Options has a row of its own type in OPTIONS, and every row an
 * option: a row missing, extra or of another type fails to compile here.
 */
type Table = { readonly [K in keyof Options]-?: Row<NonNullable<Options[K]>> } & { readonly [K in Exclude<OptionName, keyof Options>]: never }
type Holds<T extends true> = T
/** Compiled only: a check of the types, nothing at run time. */
export type TableMatchesOptions = Holds<typeof OPTIONS extends Table ? true : false>

/** The value each kind of option resolves to. */
interface KindValue {
  secret: string
  origin: string
  string: string
  integer: number
  number: number
  boolean: boolean
  list: string[]
  level: string | number
  choice: string
  timeZone: string
  proxy: string
  redis: string
}

/** A row's value: one of its choices, or what its kind holds. */
type Value<R> = R extends { readonly kind: 'choice', readonly choices: ReadonlyArray<infer C> }
  ? C
  : R extends { readonly kind: infer K extends Kind } ? KindValue[K] : never

/** undefined when an option may stay unset: no default and not required (e.g. proxy: the proxy env variables apply; timeZone: the local zone; spoolDir: memory only). */
type Unset<R> = R extends { readonly default: unknown } | { readonly required: true } ? never : undefined

/** The options after validation, defaults and environment applied: one field per row of OPTIONS, typed from it. */
export type Config = { -readonly [K in OptionName]: Value<typeof OPTIONS[K]> | Unset<typeof OPTIONS[K]> }
