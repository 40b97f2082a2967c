import { AsyncLocalStorage } from 'node:async_hooks'
import { Bitrix24TransportError, ERR_INVALID_EVENT_TOKEN, ERR_INVALID_OPTION } from './errors'
import { MAX_TOKEN_LENGTH } from './token-length'
import { PREFIX } from './prefix'

/**
 * What a context holds. `token` becomes undefined once the activity run in it
 * has completed, so that work it left behind no longer logs into the workflow.
 */
export interface EventTokenScope {
  token: string | undefined
  /** The log-method hook's child loggers bound to `token`, one per logger that logged here (log-method.ts). */
  children?: WeakMap<object, BoundChild>
}

/** A child logger bound to a context's token, and the bindings its parent had when it was made. */
export interface BoundChild {
  readonly chindings: unknown
  readonly child: object
}

/** pino's `mixin` signature, without depending on pino's types. */
export type EventTokenMixin = (mergeObject: object, level?: number, logger?: unknown) => object

// One store for the whole process: every entry point of this module shares it.
const storage = new AsyncLocalStorage<EventTokenScope>()

// Bitrix24 event tokens are short printable ASCII. The token usually comes
// straight from an HTTP request, so anything else is refused before it is
// stored and written into every line of the activity; the length cap is the
// transport's own.
const TOKEN = /^[\x21-\x7e]+$/

/** The token, checked; throws a coded error that describes (never echoes) a bad one. */
export function checkEventToken (token: unknown): string {
  if (typeof token === 'string' && token.length <= MAX_TOKEN_LENGTH && TOKEN.test(token)) return token
  const given = typeof token === 'string' ? `a string of ${token.length} characters${token.length > 0 && token.length <= MAX_TOKEN_LENGTH ? ' with characters other than printable ASCII' : ''}` : token === null ? 'null' : Array.isArray(token) ? 'an array' : typeof token
  throw new Bitrix24TransportError(ERR_INVALID_EVENT_TOKEN, `${PREFIX}an event token must be a string of 1 to ${MAX_TOKEN_LENGTH} printable ASCII characters, got ${given}`)
}

/** The key of a line that holds the token; throws a coded error naming the option. */
export function checkKey (value: unknown, option: string): string {
  if (typeof value === 'string' && value !== '') return value
  const given = typeof value === 'string' ? '""' : value === null || typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value
  throw new Bitrix24TransportError(ERR_INVALID_OPTION, `${PREFIX}option "${option}" must be a non-empty string, got ${given}`, option)
}

/** Runs `fn` inside `scope`: the low-level form of withEventToken, for runActivity. */
export function runInScope<T> (scope: EventTokenScope, fn: () => T): T {
  return storage.run(scope, fn)
}

/**
 * Runs `fn` (sync or async) in a context that carries `token`, and returns what
 * `fn` returns. Every line logged from it, however deep in awaits, timers and
 * callbacks it started, gets the token through the mixin.
 */
export function withEventToken<T> (token: string, fn: () => T): T {
  return storage.run({ token: checkEventToken(token) }, fn)
}

/** The token of the current context, or undefined outside any. */
export function currentEventToken (): string | undefined {
  return storage.getStore()?.token
}

/** The current context, or undefined outside any. */
export function currentScope (): EventTokenScope | undefined {
  return storage.getStore()
}

// Returned outside a context: shared, so that a line logged outside costs no allocation.
const NONE = Object.freeze({})

/**
 * pino's `mixinMergeStrategy` to pair with the mixin. pino's default strategy
 * copies the line's fields into the mixin's result; this one leaves the line
 * untouched when the mixin had nothing to add, so outside a context a line
 * costs one call and no copy.
 */
export function eventTokenMergeStrategy (mergeObject: object, mixinObject: object): object {
  return mixinObject === NONE ? mergeObject : Object.assign(mixinObject, mergeObject)
}

// pino keeps a logger's settings under symbols; pino.symbols exposes them, but
// from whichever copy of pino this module would load, which need not be the
// logger's. The logger's own symbols are found by their description instead,
// once, and looked for again only when a logger does not hold them.
function pinoSymbol (logger: object, description: string): symbol | undefined {
  for (let o: object | null = logger; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    for (const s of Object.getOwnPropertySymbols(o)) if (s.description === description) return s
  }
  return undefined
}

/** A symbol-keyed setting of pino loggers, cached for the per-line path. */
class PinoSetting {
  private sym: symbol | undefined
  constructor (private readonly description: string) {}

  /** The setting of `logger`, or undefined when it does not hold it. */
  of (logger: unknown): unknown {
    if (typeof logger !== 'object' || logger === null) return undefined
    if (this.sym === undefined || !(this.sym in logger)) {
      this.sym = pinoSymbol(logger, this.description) ?? this.sym
      if (this.sym === undefined || !(this.sym in logger)) return undefined
    }
    return (logger as Record<symbol, unknown>)[this.sym]
  }
}

const strategySetting = new PinoSetting('pino.mixinMergeStrategy')
const chindingsSetting = new PinoSetting('pino.chindings')
const errorKeySetting = new PinoSetting('pino.errorKey')

/** The logger's serialized bindings (pino's chindings), or undefined when it is not a pino logger. */
export function chindingsOf (logger: unknown): unknown {
  return chindingsSetting.of(logger)
}

/** The logger's `errorKey`, 'err' when it is not a pino logger. */
export function errorKeyOf (logger: unknown): string {
  const key = errorKeySetting.of(logger)
  return typeof key === 'string' ? key : 'err'
}

/** What the mixin returns when it adds nothing. */
function none (logger: unknown): object {
  // Under pino's default strategy the line's fields are written into this
  // object: a shared one is only safe when the logger merges with ours.
  return strategySetting.of(logger) === eventTokenMergeStrategy ? NONE : {}
}

/**
 * The value a logger binds to one key (through pino's `child()` or
 * `setBindings()`), or undefined. pino serializes bindings ahead of each line,
 * apart from the line's own fields, so a key bound there and added by the
 * mixin would appear twice in the line. Remembers the last bindings looked
 * at: lines through the same logger parse nothing.
 */
export class BoundValue {
  private readonly key: string
  private readonly needle: string
  private chindings: string | undefined
  private value: unknown

  constructor (key: string) {
    this.key = key
    // A bound key is always written `,"key":` at the top level of the bindings.
    this.needle = `,${JSON.stringify(key)}:`
  }

  of (logger: unknown): unknown {
    const chindings = chindingsOf(logger)
    if (typeof chindings !== 'string') {
      const bindings = (logger as { bindings?: () => Record<string, unknown> } | null | undefined)?.bindings
      return typeof bindings === 'function' ? bindings.call(logger)[this.key] : undefined
    }
    if (chindings !== this.chindings) {
      this.chindings = chindings
      this.value = undefined
      if (chindings.includes(this.needle)) {
        try {
          this.value = (JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>)[this.key]
        } catch {
          // Bindings shaped by a custom formatter: the key is there, that is enough.
          this.value = true
        }
      }
    }
    return this.value
  }
}

/**
 * A pino `mixin` that adds the context's token under `tokenKey`, unless the
 * line already carries one: a token in the line's own object or bound to the
 * logger wins, and no line ever carries two.
 */
export function createEventTokenMixin (tokenKey = 'eventToken'): EventTokenMixin {
  const key = checkKey(tokenKey, 'tokenKey')
  const bound = new BoundValue(key)
  return function eventTokenMixin (mergeObject, _level, logger) {
    const scope = storage.getStore()
    if (scope === undefined || scope.token === undefined) return none(logger)
    if ((mergeObject as Record<string, unknown> | null | undefined)?.[key] !== undefined || bound.of(logger) !== undefined) return none(logger)
    return { [key]: scope.token }
  }
}

/** The mixin for the default `tokenKey`, `eventToken`. */
export const eventTokenMixin: EventTokenMixin = createEventTokenMixin()
