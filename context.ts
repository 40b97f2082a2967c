// The light entry, `pino-bitrix24-workflow/context`, for the application's
// main thread: the event token follows the async context into every line of
// the root logger. It loads neither the transport nor undici.
export {
  withEventToken,
  currentEventToken,
  eventTokenMixin,
  createEventTokenMixin,
  eventTokenMergeStrategy,
  type EventTokenMixin
} from './lib/context'
export { eventTokenLogMethod, createEventTokenLogMethod, type EventTokenLogMethod } from './lib/log-method'
export { runActivity, type ActivityLogger, type ActivityOutcome, type ReturnValues, type RunActivityOptions } from './lib/run-activity'
export { Bitrix24TransportError, ERR_INVALID_EVENT_TOKEN, ERR_INVALID_OPTION } from './lib/errors'
