// The one declaration of every option: its kind of value, range, default,
// environment variable and meaning. parseOptions validates from it, the CLI
// derives its flags and --help from it, and the README's options table and the
// TSDoc of Options are generated from it (`npm run docs`; a test fails when
// they are stale). option-types.ts holds Options, checks that every option of
// it has a row of its type and every row an option, and derives Config from
// the rows (this file would otherwise import it back).

import { deepFreeze } from './freeze'

/** How a value is checked (and, for the CLI, read from a flag). */
export type Kind =
  /** A key or session token: printable ASCII, never echoed. */
  | 'secret'
  /** The API origin: https:, or http: to a loopback host. */
  | 'origin'
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  /** An array of non-empty strings; comma-separated on the command line. */
  | 'list'
  /** A level label or number. */
  | 'level'
  /** One of `choices`. */
  | 'choice'
  /** An IANA time zone name. */
  | 'timeZone'
  /** An http: or https: proxy URL; its credentials are secret. */
  | 'proxy'
  /** A redis: or rediss: URL; its password is secret. */
  | 'redis'

type Default<V> = V extends Array<infer T> ? readonly T[] : V

export interface Row<V> {
  readonly kind: Kind
  /** The type column of the README, e.g. 'ms' or 'bytes'. */
  readonly type: string
  /** What the option is for; plain text with `code` spans, one or more sentences. */
  readonly doc: string
  /** The value an unset option takes; absent when it has none. */
  readonly default?: Default<V>
  /** How docs show the default when it is not a value, e.g. "the process's local zone". */
  readonly defaultText?: string
  /** Inclusive bounds of an integer or number. */
  readonly min?: number
  readonly max?: number
  /** The values of a 'choice'. */
  readonly choices?: readonly string[]
  /** The environment variable read when the option is not given. */
  readonly env?: string
  /** What stands for the value in --help, e.g. 'ms'. */
  readonly value?: string
  /** No default: start-up fails without it. */
  readonly required?: true
}

export const DEFAULT_BASE_URL = 'https://vibecode.bitrix24.tech'

/** Every option, in the order docs list them. */
export const OPTIONS = deepFreeze({
  apiKey: {
    kind: 'secret',
    type: 'string',
    doc: 'Vibe API key, `vibe_api_…` (personal) or `vibe_app_…` (app). Prefer the environment variable: command-line arguments are visible to other users in `ps`.',
    defaultText: 'none; required',
    env: 'BITRIX24_API_KEY',
    value: 'key',
    required: true
  },
  sessionToken: {
    kind: 'secret',
    type: 'string',
    doc: 'User session for an app key, sent as `Authorization: Bearer …`.',
    defaultText: 'none',
    env: 'BITRIX24_SESSION_TOKEN',
    value: 'token'
  },
  baseUrl: {
    kind: 'origin',
    type: 'URL',
    doc: 'API origin; `https:` unless the host is loopback (127.0.0.0/8, ::1, localhost).',
    default: DEFAULT_BASE_URL,
    env: 'BITRIX24_BASE_URL',
    value: 'url'
  },
  proxy: {
    kind: 'proxy',
    type: 'URL',
    doc: 'HTTP(S) proxy for the API requests, `http://[user:password@]host:port`. Without it `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` are honoured. Its credentials are never echoed.',
    defaultText: 'none (proxy env variables)',
    value: 'url'
  },
  redisUrl: {
    kind: 'redis',
    type: 'URL',
    doc: 'Share one request budget between processes through Redis: `redis://` or `rediss://[user:password@]host:port`. Its password is never echoed.',
    defaultText: 'none',
    env: 'BITRIX24_REDIS_URL',
    value: 'url'
  },
  tokenKey: {
    kind: 'string',
    type: 'string',
    doc: 'Field of a log line that holds the workflow\'s event token.',
    default: 'eventToken',
    value: 'field'
  },
  eventKey: {
    kind: 'string',
    type: 'string',
    doc: 'Field of a log line that completes the activity.',
    default: 'workflowEvent',
    value: 'field'
  },
  flushInterval: {
    kind: 'integer',
    type: 'ms',
    doc: 'How long a token\'s oldest pending line waits before the token is ready to send; its entry is formed when its request can go, so under a shortfall lines pack into fuller entries.',
    // 2 s: a workflow log is read by people, so a second or two of delay
    // costs nothing, while fewer entries matter twice: Bitrix24 keeps only the
    // newest 50 rows of a workflow, and a portal drains only 2 requests/s.
    default: 2000,
    min: 0,
    max: 3600000,
    value: 'ms'
  },
  maxEntryBytes: {
    kind: 'integer',
    type: 'bytes',
    doc: 'Largest entry, in UTF-8 bytes of `logMessage` (the Bitrix24 log column holds 64 KB).',
    default: 16384,
    min: 256,
    max: 65535,
    value: 'bytes'
  },
  maxRows: {
    kind: 'integer',
    type: 'integer',
    doc: 'Log rows one workflow may get over its activity\'s whole life, the completion\'s included: rows come quickly at first and further apart as the activity ages, and entries grow (up to 60,000 bytes) rather than spend more. Bitrix24 keeps only the newest 50 rows of a workflow; `0` turns the budget off (for a portal without that limit).',
    // 40: the 50 rows Bitrix24 keeps, less room for the workflow's own rows
    // (its start, its other activities, a condition or two). See lib/row-budget.ts.
    default: 40,
    min: 0,
    max: 10000,
    env: 'BITRIX24_MAX_ROWS',
    value: 'n'
  },
  concurrency: {
    kind: 'integer',
    type: 'integer',
    doc: 'Requests in flight at once (never more than one per token).',
    default: 4,
    min: 1,
    max: 256,
    value: 'n'
  },
  requestTimeout: {
    kind: 'integer',
    type: 'ms',
    doc: 'Deadline of one request: connect, headers and the whole answer body together.',
    default: 10000,
    min: 100,
    max: 600000,
    value: 'ms'
  },
  closeTimeout: {
    kind: 'integer',
    type: 'ms',
    doc: 'Longest wait for delivery at close (pino waits 10 s for its worker, so at most 9000).',
    default: 5000,
    min: 0,
    max: 9000,
    value: 'ms'
  },
  messageFormat: {
    kind: 'string',
    type: 'string',
    doc: 'Template of a line: `{time}`, `{level}`, `{msg}`, `{fields}` or any field or dotted path.',
    default: '{time} {level} {msg}',
    value: 'template'
  },
  include: {
    kind: 'list',
    type: 'string[]',
    doc: 'Only these extra fields are shown; an empty list shows none.',
    defaultText: 'all but the excluded ones',
    value: 'a,b'
  },
  exclude: {
    kind: 'list',
    type: 'string[]',
    doc: 'Extra fields never shown, on top of pid, hostname, time, level, msg, v, the token key and the event key.',
    default: [],
    value: 'a,b'
  },
  level: {
    kind: 'level',
    type: 'string | number',
    doc: 'Lowest level that reaches the workflow log: a label of the logger (custom levels work) or a number. Lines that carry their level as a label (`formatters.level`) are filtered too; a label the logger does not know is let through.',
    defaultText: 'every level',
    value: 'level'
  },
  timeZone: {
    kind: 'timeZone',
    type: 'string',
    doc: 'IANA time zone of `{time}`, e.g. `Europe/Berlin`: the zone your portal\'s users read the log in.',
    defaultText: 'the process\'s local zone',
    env: 'BITRIX24_TIME_ZONE',
    value: 'zone'
  },
  errorStackFrames: {
    kind: 'integer',
    type: 'integer',
    doc: 'Stack frames of the error (the logger\'s `errorKey`, `err` by default) to show.',
    default: 0,
    min: 0,
    max: 100,
    value: 'n'
  },
  keepNonBmp: {
    kind: 'boolean',
    type: 'boolean',
    doc: 'Keep characters outside the Basic Multilingual Plane (emoji) instead of replacing them with `�`.',
    default: false
  },
  onRateLimit: {
    kind: 'choice',
    type: '\'buffer\' | \'drop\'',
    doc: 'What a rate limit does to queued entries: `buffer` (wait) or `drop`.',
    default: 'buffer',
    choices: ['buffer', 'drop'],
    value: 'mode'
  },
  maxRequestsPerSecond: {
    kind: 'number',
    type: 'number',
    doc: 'Client-side pacing, requests per second shared by all tokens; `0` turns it off.',
    default: 2,
    min: 0,
    max: 10000,
    value: 'n'
  },
  burst: {
    kind: 'integer',
    type: 'integer',
    doc: 'Requests that may go at once before pacing applies.',
    default: 5,
    min: 1,
    max: 10000,
    value: 'n'
  },
  maxRetries: {
    kind: 'integer',
    type: 'integer',
    doc: 'Retries of an entry after its first attempt, for faults (rate-limit answers do not count).',
    default: 5,
    min: 0,
    max: 100,
    value: 'n'
  },
  maxRetryDelay: {
    kind: 'integer',
    type: 'ms',
    doc: 'Cap of one retry delay, also of a delay the server asks for.',
    default: 30000,
    min: 1,
    max: 3600000,
    value: 'ms'
  },
  retryAmbiguous: {
    kind: 'boolean',
    type: 'boolean',
    doc: 'Retry a request that may have landed (at-least-once: an entry may be written twice).',
    default: true
  },
  maxBufferedBytes: {
    kind: 'integer',
    type: 'bytes',
    doc: 'Cap of queued text; over it the oldest lines are dropped. At least 64 KiB, so that it holds the largest entry.',
    default: 8 * 1024 * 1024,
    min: 65536,
    max: 2 ** 31,
    value: 'bytes'
  },
  maxTokens: {
    kind: 'integer',
    type: 'integer',
    doc: 'Cap of tokens with queued data, and of remembered dead or completed tokens.',
    default: 10000,
    min: 1,
    max: 10000000,
    value: 'n'
  },
  statsInterval: {
    kind: 'integer',
    type: 'ms',
    doc: 'Emit `bitrix24:stats` this often while the counters change; `0`: only at close.',
    default: 0,
    min: 0,
    max: 86400000,
    value: 'ms'
  },
  spoolDir: {
    kind: 'string',
    type: 'path',
    doc: 'Directory of a disk spool (needs the `lmdb` package): every accepted line and completion is kept there until it is settled, and a later start with the same directory delivers what a killed process left. Processes may share the directory; each owns its own spool.',
    defaultText: 'none (memory only)',
    env: 'BITRIX24_SPOOL_DIR',
    value: 'dir'
  },
  spoolMaxBytes: {
    kind: 'integer',
    type: 'bytes',
    doc: 'Cap of the spool; over it the oldest lines leave the spool (counted as `unspooled`) and are kept in memory only.',
    default: 64 * 1024 * 1024,
    min: 65536,
    max: 2 ** 40,
    value: 'bytes'
  },
  spoolMaxAge: {
    kind: 'integer',
    type: 'ms',
    doc: 'Lines and completions found in a spool older than this are not replayed; they are dropped as `expired`.',
    // A day: an event token is usually long dead by then, and stale lines
    // would only crowd out a workflow's last 50 rows.
    default: 86400000,
    min: 1000,
    max: 30 * 86400000,
    value: 'ms'
  },
  quiet: {
    kind: 'boolean',
    type: 'boolean',
    doc: 'Write nothing to stderr (for tests and noisy environments); events and stats still flow.',
    default: false,
    env: 'BITRIX24_QUIET'
  }
} as const satisfies Readonly<Record<string, Row<unknown>>>)

export type OptionName = keyof typeof OPTIONS

/** The names of the options, in table order. */
export const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[]

/** The row of an option, widened for code that walks all of them. */
export function rowOf (name: OptionName): Row<unknown> {
  return OPTIONS[name]
}
