import { createTransport } from './lib/transport'
import { Bitrix24TransportError, ERR_INSECURE_BASE_URL, ERR_INVALID_OPTION, ERR_MISSING_API_KEY, ERR_UNKNOWN_OPTION, ERR_MISSING_PACKAGE } from './lib/errors'
import { DEFAULT_BASE_URL, defaults, parseOptions } from './lib/options'
import { DROP_REASONS } from './lib/stats'
import { RULES } from './lib/classify'
import type * as options from './lib/options'
import type * as stats from './lib/stats'
import type * as transport from './lib/transport'
import type * as events from './lib/events'
import type * as requestBudget from './lib/request-budget'

/**
 * `module.exports` is the factory itself, so that `require()`, ESM `import`
 * and pino's worker (which unwraps `default`) all find it the same way.
 */
const pinoBitrix24Workflow = Object.assign(createTransport, {
  default: createTransport,
  build: createTransport,
  parseOptions,
  defaults,
  DEFAULT_BASE_URL,
  DROP_REASONS,
  RULES,
  Bitrix24TransportError,
  ERR_INVALID_OPTION,
  ERR_MISSING_API_KEY,
  ERR_INSECURE_BASE_URL,
  ERR_UNKNOWN_OPTION,
  ERR_MISSING_PACKAGE
})

// The namespace only adds types to the function it shares its name with.
// eslint-disable-next-line @typescript-eslint/no-redeclare
declare namespace pinoBitrix24Workflow {
  export type Options = options.Options
  export type Config = options.Config
  export type Stats = stats.Stats
  export type DropReason = stats.DropReason
  export type TransportStream = transport.TransportStream
  export type EventName = events.EventName
  export type EventPayloads = events.EventPayloads
  export type DropEvent = events.DropEvent
  export type AuthErrorEvent = events.AuthErrorEvent
  export type RateLimitedEvent = events.RateLimitedEvent
  export type CompletedEvent = events.CompletedEvent
  export type CompletionFailedEvent = events.CompletionFailedEvent
  export type ReplayedEvent = events.ReplayedEvent
  export type RequestBudget = requestBudget.RequestBudget
}

export = pinoBitrix24Workflow

// Node's ES module loader finds the names of a CommonJS module by reading its
// source (cjs-module-lexer), and cannot see through Object.assign: without
// this never-run assignment, `import { build } from 'pino-bitrix24-workflow'`
// type-checks and then fails with "Named export not found". Only the names
// count; the lexer reads no further than a value that is not a plain
// identifier, hence the same one for all. test/index.test.ts fails when a name
// the types export is missing here.
/* c8 ignore start */
0 && (module.exports = {
  default: pinoBitrix24Workflow,
  build: pinoBitrix24Workflow,
  parseOptions: pinoBitrix24Workflow,
  defaults: pinoBitrix24Workflow,
  DEFAULT_BASE_URL: pinoBitrix24Workflow,
  DROP_REASONS: pinoBitrix24Workflow,
  RULES: pinoBitrix24Workflow,
  Bitrix24TransportError: pinoBitrix24Workflow,
  ERR_INVALID_OPTION: pinoBitrix24Workflow,
  ERR_MISSING_API_KEY: pinoBitrix24Workflow,
  ERR_INSECURE_BASE_URL: pinoBitrix24Workflow,
  ERR_UNKNOWN_OPTION: pinoBitrix24Workflow,
  ERR_MISSING_PACKAGE: pinoBitrix24Workflow
})
/* c8 ignore stop */
