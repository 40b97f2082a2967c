import { BoundValue, checkKey, chindingsOf, currentScope, type EventTokenScope } from './context'
import { Bitrix24TransportError, ERR_INVALID_OPTION } from './errors'
import { PREFIX } from './prefix'

// Keys pino's child() takes out of the bindings it is given: a token bound under one would not be written.
const RESERVED = new Set(['level', 'serializers', 'formatters', 'customLevels'])

/** pino's `hooks.logMethod` signature, without depending on pino's types. */
export type EventTokenLogMethod = (this: object, args: unknown[], method: (...args: unknown[]) => void, level: number) => void

// Why a hook as well as the mixin: pino serializes a child logger's bindings
// once, when the child is made, but merges a mixin's object into every line
// and serializes its fields each time. Inside a context the hook hands the
// line to a child of the logger bound to the token, made once per context and
// logger, so a line costs what it costs through `logger.child({ eventToken })`.

/**
 * Whether the line's own object (pino's first argument) carries the key. An
 * Error does not: pino writes it under `errorKey`, its own fields with it.
 */
function carries (first: unknown, key: string): boolean {
  return typeof first === 'object' && first !== null && !(first instanceof Error) && (first as Record<string, unknown>)[key] !== undefined
}

/**
 * The child of `logger` bound to the context's token, made at the first line
 * the logger writes in this context, and made again if the logger's own
 * bindings changed since (pino's `setBindings`).
 */
function boundChild (scope: EventTokenScope, token: string, key: string, logger: object): object {
  const chindings = chindingsOf(logger)
  scope.children ??= new WeakMap()
  const known = scope.children.get(logger)
  if (known !== undefined && known.chindings === chindings) return known.child
  const child = (logger as { child: (bindings: Record<string, unknown>) => object }).child({ [key]: token })
  scope.children.set(logger, { chindings, child })
  return child
}

/**
 * A pino `hooks.logMethod` that writes each line logged inside a context
 * through a child logger bound to the context's token, under `tokenKey`; outside
 * a context, or when the line already carries a token (in its own object or
 * bound to the logger), it writes the line as it is. No line carries two tokens.
 */
export function createEventTokenLogMethod (tokenKey = 'eventToken'): EventTokenLogMethod {
  const key = checkKey(tokenKey, 'tokenKey')
  if (RESERVED.has(key)) throw new Bitrix24TransportError(ERR_INVALID_OPTION, `${PREFIX}option "tokenKey" cannot be "${key}" for the log-method hook: pino keeps that name for child logger settings, not bindings`, 'tokenKey')
  const bound = new BoundValue(key)
  return function eventTokenLogMethod (args, method) {
    const scope = currentScope()
    if (scope === undefined || scope.token === undefined || carries(args[0], key) || bound.of(this) !== undefined) {
      method.apply(this, args)
      return
    }
    method.apply(boundChild(scope, scope.token, key, this), args)
  }
}

/** The hook for the default `tokenKey`, `eventToken`. */
export const eventTokenLogMethod: EventTokenLogMethod = createEventTokenLogMethod()
