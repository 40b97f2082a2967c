// Command-line arguments of the pipe mode (`node app.js | pino-bitrix24-workflow`).
// One table describes every flag; parsing and --help are both derived from it,
// and its type makes a new option of Options without a flag fail to compile.
// Values are only converted here (strings, strict numbers, lists, booleans):
// every check of their meaning is left to parseOptions, so the CLI and the
// library give the same messages.

import { DEFAULT_BASE_URL, defaults, type Options } from './options'

export type FlagType = 'string' | 'number' | 'boolean' | 'list' | 'level'

// The kind of value an option takes, read off its type in Options ('level'
// for string | number). The brackets stop the union from being split.
type TextType<V> = [V] extends [string] ? 'string' : 'level'
type TypeOf<V> = [V] extends [boolean] ? 'boolean' : [V] extends [number] ? 'number' : [V] extends [string[]] ? 'list' : TextType<V>

interface Row<T extends FlagType> {
  readonly type: T
  /** What stands for the value in --help. */
  readonly value?: string
  readonly description: string
  /** What --help shows as the default of an option that has none in `defaults`. */
  readonly fallback?: string
  /** The environment variable parseOptions falls back to. */
  readonly env?: string
}

type Table = { readonly [K in keyof Options]-?: Row<TypeOf<NonNullable<Options[K]>>> }

const TABLE: Table = {
  apiKey: {
    type: 'string',
    value: 'key',
    description: 'Vibe API key (vibe_api_… or vibe_app_…). Prefer the environment variable: arguments are visible to other users in `ps`.',
    fallback: 'none; required',
    env: 'BITRIX24_API_KEY'
  },
  sessionToken: {
    type: 'string',
    value: 'token',
    description: 'User session token, sent as Authorization: Bearer with an app key.',
    fallback: 'none',
    env: 'BITRIX24_SESSION_TOKEN'
  },
  baseUrl: {
    type: 'string',
    value: 'url',
    description: 'API origin; http: is allowed for loopback hosts only.',
    fallback: DEFAULT_BASE_URL,
    env: 'BITRIX24_BASE_URL'
  },
  tokenKey: { type: 'string', value: 'field', description: 'Field of a log line that holds the workflow\'s event token.' },
  eventKey: { type: 'string', value: 'field', description: 'Field of a log line that completes the activity.' },
  flushInterval: { type: 'number', value: 'ms', description: 'How long a token\'s first pending line may wait before its entry is sent.' },
  maxEntryBytes: { type: 'number', value: 'bytes', description: 'Largest entry, in UTF-8 bytes of the log message.' },
  concurrency: { type: 'number', value: 'n', description: 'Requests in flight at once (never more than one per token).' },
  requestTimeout: { type: 'number', value: 'ms', description: 'Connect, headers and body timeout of one request.' },
  closeTimeout: { type: 'number', value: 'ms', description: 'Longest wait for delivery once stdin ends or a signal arrives.' },
  messageFormat: { type: 'string', value: 'template', description: 'Template of one line; {field} is replaced by that field.' },
  include: {
    type: 'list',
    value: 'a,b',
    description: 'Only these extra fields are shown; --include= shows none.',
    fallback: 'all but the excluded ones'
  },
  exclude: {
    type: 'list',
    value: 'a,b',
    description: 'Extra fields never shown, on top of pid, hostname, time, level, msg, v and the token key.',
    fallback: 'none'
  },
  level: {
    type: 'level',
    value: 'level',
    description: 'Lowest level that reaches the workflow log: trace, debug, info, warn, error, fatal or a number.',
    fallback: 'every level'
  },
  errorStackFrames: { type: 'number', value: 'n', description: 'Stack frames of err to show.' },
  keepNonBmp: { type: 'boolean', description: 'Keep characters outside the Basic Multilingual Plane (emoji) instead of replacing them.' },
  onRateLimit: { type: 'string', value: 'mode', description: 'What a rate limit does to queued entries: buffer (wait) or drop.' },
  maxRequestsPerSecond: { type: 'number', value: 'n', description: 'Client-side pacing, requests per second shared by all tokens; 0 = off.' },
  burst: { type: 'number', value: 'n', description: 'Requests that may go at once before pacing applies.' },
  maxRetries: { type: 'number', value: 'n', description: 'Attempts per entry after the first, for faults.' },
  maxRetryDelay: { type: 'number', value: 'ms', description: 'Cap of one retry delay.' },
  retryAmbiguous: { type: 'boolean', description: 'Retry a request that may have landed (at-least-once: an entry may be written twice).' },
  maxBufferedBytes: { type: 'number', value: 'bytes', description: 'Cap of queued text.' },
  maxTokens: { type: 'number', value: 'n', description: 'Cap of tokens with queued data, and of remembered dead tokens.' },
  statsInterval: { type: 'number', value: 'ms', description: 'Emit the bitrix24:stats event this often while the counters change; 0 = only at close (pipe mode has no listener for it).' },
  redisUrl: {
    type: 'string',
    value: 'url',
    description: 'redis:// or rediss:// URL: every process on this key and base URL shares one request budget there. Prefer the environment variable: it may hold a password.',
    fallback: 'none; each process paces itself',
    env: 'BITRIX24_REDIS_URL'
  }
}

export interface Flag {
  /** The flag without its dashes, e.g. 'flush-interval'. */
  readonly name: string
  /** The option it sets, or undefined for the CLI's own flags. */
  readonly option: keyof Options | undefined
  readonly type: FlagType
  readonly value: string | undefined
  readonly description: string
  /** The default as --help shows it. */
  readonly default: string
  readonly env: string | undefined
}

export function kebab (option: string): string {
  return option.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
}

function shown (value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

/** The flags of the options, in the order of Options. */
export const OPTION_FLAGS: readonly Flag[] = Object.entries(TABLE).map(([option, row]: [string, Row<FlagType>]) => ({
  name: kebab(option),
  option: option as keyof Options,
  type: row.type,
  value: row.value,
  description: row.description,
  default: option in defaults ? shown(defaults[option as keyof typeof defaults]) : String(row.fallback),
  env: row.env
}))

const TEE: Flag = {
  name: 'tee',
  option: undefined,
  type: 'boolean',
  value: undefined,
  description: 'Copy stdin to stdout unchanged, so the app\'s logs still reach the terminal or the next command of the pipe. On by default: a pipe stage that silently swallowed every log line would surprise; --no-tee when nothing needs them.',
  default: 'true',
  env: undefined
}

const BY_NAME = new Map<string, Flag>([...OPTION_FLAGS, TEE].map((flag) => [flag.name, flag]))

/** What the arguments ask for. */
export type Command =
  | { command: 'help' }
  | { command: 'version' }
  | { command: 'run', options: Options, tee: boolean }

/** A mistake in the arguments themselves. Its message never repeats a value of a secret flag. */
export class UsageError extends Error {
  /** The flag at fault, e.g. '--flush-interval', when there is one. */
  readonly flag: string | undefined

  constructor (message: string, flag?: string) {
    super(message)
    this.name = 'UsageError'
    this.flag = flag
  }
}

// Decimal only: '12abc', '0x10', '' and ' 5' are mistakes, not numbers.
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i

function quoted (raw: string): string {
  return JSON.stringify(raw.length > 60 ? raw.slice(0, 60) + '…' : raw)
}

function toBoolean (flag: Flag, raw: string): boolean {
  if (raw === 'true') return true
  if (raw === 'false') return false
  throw new UsageError(`flag --${flag.name} takes true or false, got ${quoted(raw)}`, `--${flag.name}`)
}

function toValue (flag: Flag, raw: string): unknown {
  switch (flag.type) {
    case 'number':
      if (!NUMBER.test(raw)) throw new UsageError(`flag --${flag.name} takes a number, got ${quoted(raw)}`, `--${flag.name}`)
      return Number(raw)
    case 'level':
      return NUMBER.test(raw) ? Number(raw) : raw
    case 'list':
      return raw === '' ? [] : raw.split(',').map((item) => item.trim())
    default:
      return raw
  }
}

/**
 * Reads the arguments (without node and the script). `--flag value` and
 * `--flag=value`; booleans as `--flag`, `--no-flag` or `--flag=true|false`;
 * lists comma-separated, and repeating a list flag adds to it; any other
 * repeated flag keeps its last value. `-h`/`--help` and `-v`/`--version`
 * win over whatever follows them. Throws a UsageError.
 */
export function parseArgs (argv: readonly string[]): Command {
  const options: Record<string, unknown> = {}
  let tee = true
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '-h' || arg === '--help') return { command: 'help' }
    if (arg === '-v' || arg === '--version') return { command: 'version' }
    if (!arg.startsWith('-')) {
      // Not echoed: a stray argument is as likely as not a key that lost its flag.
      throw new UsageError(`unexpected argument #${i + 1}: this command takes flags only (see --help)`)
    }
    const eq = arg.indexOf('=')
    const name = (eq === -1 ? arg : arg.slice(0, eq)).replace(/^--?/, '')
    const inline = eq === -1 ? undefined : arg.slice(eq + 1)
    let flag = arg.startsWith('--') ? BY_NAME.get(name) : undefined
    let negated = false
    if (flag === undefined && arg.startsWith('--no-')) {
      const positive = BY_NAME.get(name.slice(3))
      if (positive?.type === 'boolean') {
        flag = positive
        negated = true
      }
    }
    if (flag === undefined) {
      const spelled = (eq === -1 ? arg : arg.slice(0, eq))
      throw new UsageError(`unknown flag ${spelled} (see --help)`, spelled)
    }

    let value: unknown
    if (flag.type === 'boolean') {
      if (negated && inline !== undefined) throw new UsageError(`flag --${name} takes no value`, `--${name}`)
      value = inline === undefined ? !negated : toBoolean(flag, inline)
    } else {
      let raw = inline
      if (raw === undefined) {
        const next = argv[i + 1]
        if (next === undefined || next.startsWith('--')) {
          throw new UsageError(`flag --${flag.name} needs a value (--${flag.name} <${flag.value}> or --${flag.name}=<${flag.value}>)`, `--${flag.name}`)
        }
        raw = next
        i++
      }
      value = toValue(flag, raw)
    }

    if (flag.option === undefined) {
      tee = value as boolean
    } else if (flag.type === 'list' && Array.isArray(options[flag.option])) {
      options[flag.option] = [...options[flag.option] as string[], ...value as string[]]
    } else {
      options[flag.option] = value
    }
  }
  return { command: 'run', options: options as Options, tee }
}

/** The flag that sets an option, e.g. '--flush-interval' for 'flushInterval'. */
export function flagOf (option: string | undefined): string | undefined {
  const flag = option === undefined ? undefined : BY_NAME.get(kebab(option))
  return flag?.option === undefined ? undefined : `--${flag.name}`
}

/**
 * One or two lines for stderr about an error of the arguments or of the
 * options: the library's own message, and the flag to fix when it names an option.
 */
export function explain (err: Error): string {
  const message = err.message
  const prefix = message.startsWith('pino-bitrix24-workflow: ') ? '' : 'pino-bitrix24-workflow: '
  const flag = err instanceof UsageError ? undefined : flagOf((err as { option?: string }).option)
  const hint = flag === undefined ? '' : `pino-bitrix24-workflow: set it with ${flag} (see --help)\n`
  return prefix + message + '\n' + hint
}

const WIDTH = 80

function wrap (text: string, indent: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > WIDTH) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : line + ' ' + word
    }
  }
  lines.push(line)
  return lines
}

function left (flag: Flag): string {
  return flag.type === 'boolean' ? `--[no-]${flag.name}` : `--${flag.name} <${flag.value}>`
}

function entries (flags: readonly Flag[], column: number): string {
  let text = ''
  for (const flag of flags) {
    const env = flag.env === undefined ? [] : [`Env: ${flag.env}`]
    const lines = [...wrap(flag.description, column), ...env, `Default: ${flag.default}`]
    text += ('  ' + left(flag)).padEnd(column) + lines.join('\n' + ' '.repeat(column)) + '\n'
  }
  return text
}

/** The text of --help. */
export function usage (): string {
  const column = Math.max(...[...OPTION_FLAGS, TEE].map((flag) => left(flag).length)) + 4
  return 'Usage: node app.js | pino-bitrix24-workflow [options]\n' +
    '\n' +
    'Reads pino NDJSON log lines from stdin and mirrors every line that carries an\n' +
    'event token into that Bitrix24 workflow\'s log (Vibe API). Lines without a\n' +
    'token, and lines that are not JSON objects, are skipped.\n' +
    '\n' +
    'Options:\n' +
    entries(OPTION_FLAGS, column) +
    '\n' +
    'Pipe:\n' +
    entries([TEE], column) +
    '  -h, --help'.padEnd(column) + 'Print this help and exit.\n' +
    '  -v, --version'.padEnd(column) + 'Print the version and exit.\n' +
    '\n' +
    'Values go as --flag value or --flag=value; lists are comma-separated and a\n' +
    'repeated list flag adds to the list; booleans take --flag, --no-flag or\n' +
    '--flag=true|false.\n' +
    '\n' +
    'Exit status: 0 once stdin ends, or on SIGINT/SIGTERM, after delivering what is\n' +
    'queued for at most --close-timeout ms (lines given up on are summed up on\n' +
    'stderr); 1 for invalid flags or options.\n'
}
