import build from 'pino-abstract-transport'
import type { Transform } from 'node:stream'
import { Client } from './client'
import { type Clock, systemClock } from './clock'
import { Delivery, type Sender } from './delivery'
import { Bitrix24TransportError, ERR_INVALID_OPTION } from './errors'
import { createEmit } from './events'
import { Formatter, levelNumber, type PinoConfig } from './format'
import { type Options, parseOptions } from './options'
import { PacerBudget } from './pacer-budget'
import { Reporter, writeStderr } from './reporter'
import { Router } from './router'
import { pinoSendsConfig } from './runtime'
import { createBudget } from './shared-budget'
import { createStats, type Stats } from './stats'

/** The stream the factory returns: what pino writes to, plus delivery's controls. */
export type TransportStream = Transform & {
  /** Calls back once every line written before it is delivered or given up on. */
  flush: (cb?: (err?: Error) => void) => void
  /** Live counters. */
  stats: Stats
}

/** Replaceable parts, for tests: the clock, stderr, the network, the environment. */
export interface Internals {
  clock?: Clock
  stderr?: (text: string) => void
  sender?: Sender
  env?: NodeJS.ProcessEnv
}

// Returned by parseLine for every line: delivery has already taken it, and a
// shared object costs no allocation on its way through the stream.
const TAKEN = Object.freeze({})

/**
 * The transport factory: `pino.transport({ target: 'pino-bitrix24-workflow' })`
 * calls it in a worker, `pino(await build(options))` in-process. Options are
 * validated before anything starts; invalid ones reject with a coded error.
 */
export async function createTransport (options?: Options, internals: Internals = {}): Promise<TransportStream> {
  const config = parseOptions(options, internals.env)
  const clock = internals.clock ?? systemClock
  const stats = createStats()
  const sender = internals.sender ?? new Client({
    baseUrl: config.baseUrl,
    apiKey: config.apiKey,
    sessionToken: config.sessionToken,
    requestTimeout: config.requestTimeout,
    connections: config.concurrency
  })
  // pino sends its configuration (levels, messageKey, errorKey) only to a worker it started itself.
  const pinoWillSendConfig = pinoSendsConfig()
  // Both are made in build()'s callback, which runs before any line can arrive
  // and before the stream can be flushed or closed.
  let delivery!: Delivery
  let router!: Router

  const stream = await build((source) => {
    // In pino's worker these come from the logger; in-process they are undefined and defaults apply.
    const sent = source as unknown as PinoConfig
    const pino: PinoConfig = { levels: sent.levels, messageKey: sent.messageKey, errorKey: sent.errorKey }
    let minLevel: number | undefined
    if (config.level !== undefined) {
      minLevel = levelNumber(config.level, pino)
      if (minLevel === undefined) {
        throw new Bitrix24TransportError(ERR_INVALID_OPTION, `pino-bitrix24-workflow: option "level" must be a level of the logger, got ${JSON.stringify(config.level)}`, 'level')
      }
    }
    const reporter = new Reporter(internals.stderr ?? writeStderr, clock)
    const budget = createBudget(config, clock, reporter, new PacerBudget(config.maxRequestsPerSecond, config.burst, clock.now()))
    delivery = new Delivery(config, sender, clock, reporter, createEmit(source), stats, budget)
    router = new Router({ tokenKey: config.tokenKey, eventKey: config.eventKey, minLevel }, new Formatter(config, pino), delivery, stats)
    // What parseLine returns is of no further use: let it flow away.
    source.resume()
  }, {
    parseLine: (line: string) => {
      router.line(line)
      return TAKEN
    },
    metadata: false,
    expectPinoConfig: pinoWillSendConfig,
    close: async () => {
      await delivery.close()
    }
  }) as unknown as TransportStream

  stream.stats = stats
  stream.flush = (cb) => {
    const done = typeof cb === 'function' ? cb : () => {}
    delivery.flush().then(() => done(), done)
  }
  return stream
}
