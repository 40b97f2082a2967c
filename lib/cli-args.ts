// Command-line arguments of the pipe mode (`node app.js | pino-bitrix24-workflow`).
// The flags of the options are derived from their one declaration
// (lib/option-table.ts), and parsing and --help from the flags. Values are only
// converted here (strings, strict numbers, lists, booleans): every check of
// their meaning is left to parseOptions, so the CLI and the library give the
// same messages. The pipe's own flags stand in for what pino tells a worker
// about the logger (messageKey, errorKey, custom levels), which a separate
// process cannot see.

import { DEFAULT_LABELS, type PinoConfig } from './format'
import { kebab } from './kebab'
import { nearest } from './nearest'
import { DEFAULT_SIMULATE_PORT } from './simulate'
import { defaultText, rangeText } from './option-docs'
import { OPTION_NAMES, OPTIONS, type Row } from './option-table'
import { describe, type Options } from './options'
import { hidden, looksSecret } from './redact'
import { oneLine } from './reporter'
import { PREFIX } from './prefix'

export { kebab }

export type FlagType = 'string' | 'number' | 'boolean' | 'list' | 'level'

function flagType (row: Row<unknown>): FlagType {
  switch (row.kind) {
    case 'integer':
    case 'number': return 'number'
    case 'boolean':
    case 'list':
    case 'level': return row.kind
    default: return 'string'
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
  /** The accepted range as --help shows it, or ''. */
  readonly range: string
  readonly env: string | undefined
}

/** The flags of the options, in the order of the declarations. */
export const OPTION_FLAGS: readonly Flag[] = OPTION_NAMES.map((option) => {
  const row: Row<unknown> = OPTIONS[option]
  return {
    name: kebab(option),
    option,
    type: flagType(row),
    value: row.value,
    description: row.doc.replace(/`/g, ''),
    default: defaultText(row),
    range: rangeText(row),
    env: row.env
  }
})

const TEE: Flag = {
  name: 'tee',
  option: undefined,
  type: 'boolean',
  value: undefined,
  description: 'Copy stdin to stdout unchanged, so the app\'s logs still reach the terminal or the next command of the pipe. On by default: a pipe stage that silently swallowed every log line would surprise; --no-tee when nothing needs them.',
  default: 'true',
  range: '',
  env: undefined
}

// What pino tells a worker about the logger, given by hand: a separate process cannot see it.
const MESSAGE_KEY: Flag = {
  name: 'message-key',
  option: undefined,
  type: 'string',
  value: 'field',
  description: 'Field of the message in the lines read (the logger\'s messageKey).',
  default: "'msg'",
  range: '',
  env: undefined
}

const ERROR_KEY: Flag = {
  name: 'error-key',
  option: undefined,
  type: 'string',
  value: 'field',
  description: 'Field of the error in the lines read (the logger\'s errorKey); --error-stack-frames applies to it.',
  default: "'err'",
  range: '',
  env: undefined
}

const CUSTOM_LEVELS: Flag = {
  name: 'custom-levels',
  option: undefined,
  type: 'string',
  value: 'label:n,…',
  description: 'Levels of the logger besides pino\'s own (its customLevels), e.g. audit:35,err:99; --level may name them.',
  default: 'none',
  range: '',
  env: undefined
}

/** Flags of the pipe itself rather than of an option. */
export const PIPE_FLAGS: readonly Flag[] = [TEE, MESSAGE_KEY, ERROR_KEY, CUSTOM_LEVELS]

const BY_NAME = new Map<string, Flag>([...OPTION_FLAGS, ...PIPE_FLAGS].map((flag) => [flag.name, flag]))

/** What the arguments ask for. */
export type Command =
  | { command: 'help' }
  | { command: 'version' }
  | { command: 'run', options: Options, tee: boolean, pino: PinoConfig }
  | { command: 'simulate', port: number }
  | { command: 'simulate-help' }

/** A mistake in the arguments themselves. Its message never repeats a value of a secret flag. */
export class UsageError extends Error {
  /** The flag at fault, e.g. '--flush-interval', when there is one. */
  readonly flag: string | undefined
  readonly code = ERR_USAGE

  constructor (message: string, flag?: string) {
    super(message)
    this.name = 'UsageError'
    this.flag = flag
  }
}

/** The code of every mistake in the arguments themselves. */
export const ERR_USAGE = 'ERR_BITRIX24_USAGE'

/** `simulate [--port N]`: the simulator command's own arguments. */
export function parseSimulateArgs (argv: readonly string[]): Command {
  let port = DEFAULT_SIMULATE_PORT
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '-h' || arg === '--help') return { command: 'simulate-help' }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    if (name !== '--port') {
      const near = arg.startsWith('-') ? nearest(name.replace(/^--?/, ''), ['port']) : undefined
      throw new UsageError(`simulate takes --port N only, got ${oneLine(JSON.stringify(name.slice(0, 40)))}${near === undefined ? '' : '; did you mean --port?'}`, name)
    }
    const raw = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    if (raw === undefined || !/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
      throw new UsageError(`flag --port takes a port from 0 to 65535 (0: any free one), got ${raw === undefined ? 'nothing' : oneLine(JSON.stringify(raw.slice(0, 20)))}`, '--port')
    }
    port = Number(raw)
  }
  return { command: 'simulate', port }
}

/** --help of the simulator command. */
export function simulateUsage (): string {
  return 'Usage: pino-bitrix24-workflow simulate [--port N]\n' +
    '\n' +
    'Starts a local Vibe API simulator on 127.0.0.1 (port ' + String(DEFAULT_SIMULATE_PORT) + ' unless --port says\n' +
    'otherwise; 0 picks a free one), prints the two export lines that point an app\n' +
    'at it, and shows each workflow\'s rows as they land. Ctrl-C stops it.\n'
}

// Decimal only: '12abc', '0x10', '' and ' 5' are mistakes, not numbers.
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i

// A flag's value as an error shows it: a key passed by mistake to another flag
// is described, never echoed; anything else through the one function options use.
function quoted (flag: Flag, raw: string, secrets: readonly string[] = []): string {
  if (looksSecret(raw, secrets)) return hidden(raw)
  return describe(flag.option ?? flag.name, raw)
}

// The flags of the secret options (the API key, the session token), as the table declares them.
const SECRET_FLAGS = OPTION_NAMES.filter((name) => OPTIONS[name].kind === 'secret').map((name) => `--${kebab(name)}`)

/** The values of the secret flags anywhere in argv: never to be echoed through another flag. */
function secretsIn (argv: readonly string[]): string[] {
  const found: string[] = []
  argv.forEach((arg, i) => {
    for (const flag of SECRET_FLAGS) {
      if (arg.startsWith(flag + '=')) found.push(arg.slice(flag.length + 1))
      else if (arg === flag && argv[i + 1] !== undefined) found.push(argv[i + 1] as string)
    }
  })
  return found
}

function toBoolean (flag: Flag, raw: string, secrets: readonly string[]): boolean {
  if (raw === 'true') return true
  if (raw === 'false') return false
  throw new UsageError(`flag --${flag.name} takes true or false, got ${quoted(flag, raw, secrets)}`, `--${flag.name}`)
}

function toValue (flag: Flag, raw: string, secrets: readonly string[]): unknown {
  switch (flag.type) {
    case 'number':
      if (!NUMBER.test(raw)) throw new UsageError(`flag --${flag.name} takes a number, got ${quoted(flag, raw, secrets)}`, `--${flag.name}`)
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
 * win over whatever follows them. `envSecrets` are the key and session token
 * from the environment: like the values of --api-key and --session-token, they
 * are never echoed through another flag. Throws a UsageError.
 */
export function parseArgs (argv: readonly string[], envSecrets: ReadonlyArray<string | undefined> = []): Command {
  if (argv[0] === 'simulate') return parseSimulateArgs(argv.slice(1))
  const secrets = [...secretsIn(argv), ...envSecrets.filter((v): v is string => v !== undefined)]
  const options: Record<string, unknown> = {}
  let tee = true
  const pino: PinoConfig = {}
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
      if (looksSecret(spelled, secrets)) throw new UsageError(`unknown flag: ${hidden(spelled)} (see --help)`)
      const near = suggest(name)
      const hint = near === undefined ? '' : `; did you mean --${near}?`
      // Shown as one short line: an argument may carry anything, escape sequences included.
      throw new UsageError(`unknown flag ${oneLine(spelled, 60)}${hint} (see --help)`, spelled)
    }

    let value: unknown
    if (flag.type === 'boolean') {
      if (negated && inline !== undefined) throw new UsageError(`flag --${name} takes no value`, `--${name}`)
      value = inline === undefined ? !negated : toBoolean(flag, inline, secrets)
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
      value = toValue(flag, raw, secrets)
    }

    if (flag === TEE) {
      tee = value as boolean
    } else if (flag === MESSAGE_KEY || flag === ERROR_KEY) {
      if (value === '') throw new UsageError(`flag --${flag.name} takes a field name, got ""`, `--${flag.name}`)
      pino[flag === MESSAGE_KEY ? 'messageKey' : 'errorKey'] = value as string
    } else if (flag === CUSTOM_LEVELS) {
      pino.levels = customLevels(value as string, secrets)
    } else {
      // Every other flag is an option's.
      const option = flag.option as keyof Options
      options[option] = flag.type === 'list' && Array.isArray(options[option]) ? [...options[option] as string[], ...value as string[]] : value
    }
  }
  return { command: 'run', options: options as Options, tee, pino }
}

const LEVEL = /^([A-Za-z_$][\w$-]*):([+-]?\d+)$/

/** `audit:35,err:99` as the logger's levels: pino's own plus these, as pino merges customLevels. */
export function customLevels (raw: string, secrets: readonly string[] = []): NonNullable<PinoConfig['levels']> {
  const labels: Record<string, string> = { ...DEFAULT_LABELS }
  const values: Record<string, number> = {}
  for (const [n, label] of Object.entries(DEFAULT_LABELS)) values[label] = Number(n)
  for (const item of raw.split(',')) {
    const m = LEVEL.exec(item.trim())
    if (m === null) {
      throw new UsageError(`flag --custom-levels takes label:number pairs such as audit:35,err:99, got ${quoted(CUSTOM_LEVELS, item.trim(), secrets)}`, '--custom-levels')
    }
    const label = m[1] as string
    const n = Number(m[2])
    values[label] = n
    labels[n] = label
  }
  return { labels, values }
}

/**
 * The flag a mistyped one most likely meant: camelCase spelled, a typo or two,
 * or a unique prefix. `no-` is kept for booleans only.
 */
export function suggest (typed: string): string | undefined {
  const negated = typed.startsWith('no-')
  const wanted = kebab(negated ? typed.slice(3) : typed).toLowerCase()
  const names = [...BY_NAME.values()].filter((flag) => !negated || flag.type === 'boolean').map((flag) => flag.name)
  const best = nearest(wanted, names)
  return best === undefined ? undefined : (negated ? 'no-' : '') + best
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
  const message = err.message.startsWith(PREFIX) ? err.message.slice(PREFIX.length) : err.message
  const { option, env, code } = err as { option?: string, env?: string, code?: unknown }
  const flag = err instanceof UsageError ? undefined : flagOf(option)
  let hint = ''
  if (env !== undefined) {
    // The value came from the environment: the flag is not where to look.
    hint = `${PREFIX}fix or unset env ${env}${flag === undefined ? '' : `, or override it with ${flag}`}\n`
  } else if (flag !== undefined) {
    hint = `${PREFIX}set it with ${flag} (see --help)\n`
  }
  // Every line names its code, which the README explains.
  return PREFIX + (typeof code === 'string' ? code + ': ' : '') + message + '\n' + hint
}
