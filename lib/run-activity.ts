import { Bitrix24TransportError, ERR_INVALID_ARGUMENT, ERR_INVALID_EVENT_TOKEN, ERR_INVALID_OPTION } from './errors'
import { BoundValue, checkEventToken, checkKey, errorKeyOf, type EventTokenScope, runInScope } from './context'
import { PREFIX } from './prefix'

/** An activity's output values, as `/v1/workflows/event` takes them. */
export type ReturnValues = Record<string, unknown>

/** The two calls of a pino logger that runActivity makes. */
export interface ActivityLogger {
  info: (obj: object, msg?: string) => void
  error: (obj: object, msg?: string) => void
}

export interface RunActivityOptions {
  /** Maps what the handler threw to the activity's return values. Default: none. */
  onError?: (err: unknown) => ReturnValues | undefined | Promise<ReturnValues | undefined>
  /** Message of the completing line on success. Default 'Activity completed'. */
  message?: string
  /** Message of the completing error line. Default 'Activity failed'. */
  errorMessage?: string
  /** The transport's `tokenKey`. Default 'eventToken'. */
  tokenKey?: string
  /** The transport's `eventKey`. Default 'workflowEvent'. */
  eventKey?: string
}

/** How the activity ended; runActivity never rejects. */
export interface ActivityOutcome {
  /** True when the handler returned and the completing line was logged. */
  ok: boolean
  /** What the activity was completed with. */
  returnValues: ReturnValues
  /** What the handler threw (or, rarely, what logging the completion threw). */
  error?: unknown
}

function returnValuesOf (value: unknown): ReturnValues {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as ReturnValues : {}
}

/** A bad argument: a TypeError, as Node's own, with a stable code and the argument or option it names. */
function argumentError (code: string, message: string, option: string): TypeError & { code: string, option: string } {
  return Object.assign(new TypeError(`${PREFIX}${message}`), { code, option })
}

function text (value: unknown, option: string, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value === 'string') return value
  throw argumentError(ERR_INVALID_OPTION, `option "${option}" must be a string, got ${typeof value}`, option)
}

/** A pino logger, or anything with its info and error methods. */
function checkLogger (logger: unknown): ActivityLogger {
  const shape = logger as Partial<ActivityLogger> | null
  if (shape !== null && typeof shape === 'object' && typeof shape.info === 'function' && typeof shape.error === 'function') return logger as ActivityLogger
  const given = logger === null ? 'null' : typeof logger === 'object' ? 'an object without info() and error()' : typeof logger
  throw argumentError(ERR_INVALID_ARGUMENT, `runActivity needs a pino logger (with info() and error()), got ${given}`, 'logger')
}

/**
 * Runs an activity handler in a context carrying `eventToken`, then completes
 * the activity through the log stream: one line with `workflowEvent`, which
 * the transport sends after every earlier line of the token. On success the
 * handler's return value (an object) becomes `returnValues`; on a throw, an
 * error line with what `onError` maps from the error. Afterwards the context
 * carries no token any more: work the handler left running cannot log into a
 * completed workflow.
 *
 * Bad arguments throw at once (a TypeError with `code`, or for a bad token
 * ERR_BITRIX24_INVALID_EVENT_TOKEN); the returned promise never rejects.
 */
export function runActivity (
  logger: ActivityLogger,
  eventToken: string,
  handler: () => unknown,
  options: RunActivityOptions = {}
): Promise<ActivityOutcome> {
  checkLogger(logger)
  const token = checkEventToken(eventToken)
  if (typeof handler !== 'function') {
    throw argumentError(ERR_INVALID_ARGUMENT, `the activity handler must be a function, got ${typeof handler}`, 'handler')
  }
  if (options === null || typeof options !== 'object') {
    throw argumentError(ERR_INVALID_ARGUMENT, `the options of runActivity must be an object, got ${options === null ? 'null' : typeof options}`, 'options')
  }
  const { onError } = options
  if (onError !== undefined && typeof onError !== 'function') {
    throw argumentError(ERR_INVALID_OPTION, `option "onError" must be a function, got ${typeof onError}`, 'onError')
  }
  const message = text(options.message, 'message', 'Activity completed')
  const errorMessage = text(options.errorMessage, 'errorMessage', 'Activity failed')
  const tokenKey = checkKey(options.tokenKey ?? 'eventToken', 'tokenKey')
  const eventKey = checkKey(options.eventKey ?? 'workflowEvent', 'eventKey')
  // A logger bound to the token already writes it into the completing line;
  // one bound to another token would complete that other activity.
  const bound = new BoundValue(tokenKey).of(logger)
  if (bound !== undefined && bound !== token) {
    throw new Bitrix24TransportError(ERR_INVALID_EVENT_TOKEN, `${PREFIX}the logger given to runActivity is bound to another "${tokenKey}"; pass the root logger`)
  }
  const tokenField = bound === undefined ? { [tokenKey]: token } : {}
  const errorKey = errorKeyOf(logger)
  const scope: EventTokenScope = { token }

  return (async () => {
    let outcome: ActivityOutcome
    try {
      outcome = { ok: true, returnValues: returnValuesOf(await runInScope(scope, handler)) }
    } catch (error) {
      let returnValues: ReturnValues = {}
      try {
        returnValues = returnValuesOf(await onError?.(error))
      } catch {
        // The activity must complete even when the mapping fails: the workflow waits for it.
      }
      outcome = { ok: false, returnValues, error }
    }
    scope.token = undefined
    const line = { ...tokenField, [eventKey]: { returnValues: outcome.returnValues } }
    try {
      if (outcome.ok) logger.info(line, message)
      else logger.error({ ...line, [errorKey]: outcome.error }, errorMessage)
    } catch (error) {
      return { ok: false, returnValues: outcome.returnValues, error }
    }
    return outcome
  })()
}
