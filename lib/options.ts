import {
  Bitrix24TransportError,
  ERR_INSECURE_BASE_URL,
  ERR_INVALID_OPTION,
  ERR_MISSING_API_KEY
} from './errors'
import { deepFreeze } from './freeze'
import { DEFAULT_BASE_URL, OPTION_NAMES, OPTIONS, type OptionName, type Row, rowOf } from './option-table'
import type { Config } from './option-types'
import { hidden, looksSecret, redactUrl } from './redact'
import { unknownOptionsError } from './unknown-options'
import { oneLine } from './reporter'
import { PREFIX } from './prefix'

export { DEFAULT_BASE_URL }

export type { Config, Options } from './option-types'

type WithDefault = { [K in OptionName]: typeof OPTIONS[K] extends { default: unknown } ? K : never }[OptionName]

/** The default of every option that has one, read off the declarations; frozen. */
export const defaults: { readonly [K in WithDefault]: Config[K] extends Array<infer T> ? readonly T[] : Config[K] } = deepFreeze(Object.fromEntries(
  OPTION_NAMES.flatMap((name) => 'default' in OPTIONS[name] ? [[name, (OPTIONS[name] as Row<unknown>).default]] : [])
)) as never

const SECRET_OPTIONS = OPTION_NAMES.filter((name) => OPTIONS[name].kind === 'secret')
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
