import build from 'pino-abstract-transport'
import type { Transform } from 'node:stream'
import { Client } from './client'
import { type Clock, systemClock } from './clock'
import { Delivery, type Sender } from './delivery'
import { Discard, disabledLine } from './disabled'
import { Drops } from './drops'
import { Bitrix24TransportError, ERR_INVALID_OPTION } from './errors'
import { createEmit } from './events'
import { Formatter, levelNumber, type PinoConfig } from './format'
import { OPTIONS } from './option-table'
import { type Config, describe, type Options, parseOptions } from './options'
import { replay } from './replay'
import { Reporter, writeStderr } from './reporter'
import type { RequestBudget } from './request-budget'
import { Router } from './router'
import { isThreadStreamData, pinoSendsConfig } from './runtime'
import { startSpool } from './spool'
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
  /** What pino would tell a worker about the logger, for the pipe mode, which runs without one. */
  pino?: PinoConfig
  /** Whether this runs in pino's worker, where invalid options disable the transport rather than reject. */
  worker?: boolean
  /** The one request budget delivery spends (default: this process's own pacer and pause). */
  budget?: RequestBudget
  /** How the spool's store package is loaded (default: require), to prove the missing-package path in-process. */
  loadStore?: (name: string) => unknown
}

// Returned by parseLine for every line: delivery has already taken it, and a
// shared object costs no allocation on its way through the stream.
const TAKEN = Object.freeze({})

/**
 * The transport factory: `pino.transport({ target: 'pino-bitrix24-workflow' })`
 * calls it in a worker, `pino(await build(options))` in-process. Options are
 * validated before anything starts; invalid ones reject with a coded error,
 * except in pino's worker: there a rejection would crash the application and
 * its other targets, so the transport writes one stderr line and discards its
 * lines (drop reason `disabled`).
 */
export async function createTransport (options?: Options, internals: Internals = {}): Promise<TransportStream> {
  const inWorker = internals.worker ?? isThreadStreamData()
  let config: Config | undefined
  let sender: Sender | undefined
  let invalid: Bitrix24TransportError | undefined
  try {
    config = parseOptions(options, internals.env)
    sender = internals.sender ?? new Client({
      baseUrl: config.baseUrl,
      apiKey: config.apiKey,
      sessionToken: config.sessionToken,
      requestTimeout: config.requestTimeout,
      connections: config.concurrency,
      proxy: config.proxy,
      env: internals.env
    })
  } catch (err) {
    // Both throw only coded errors (the client for a proxy variable that is no URL).
    if (!inWorker) throw err
    invalid = err as Bitrix24TransportError
    config = undefined
  }
  const clock = internals.clock ?? systemClock
  const stats = createStats()
  const stderr = internals.stderr ?? writeStderr
  // A quiet transport writes nothing; an invalid one honours quiet when it was asked for plainly.
  const quiet = config?.quiet ?? askedForQuiet(options, internals.env ?? process.env)
  const write = quiet ? () => {} : stderr
  const reporter = new Reporter(write, clock)
  // The disk spool, and what earlier processes left in it, before any line is read.
  const spool = await startSpool(config, stats, (text) => reporter.always(text), clock.now(), internals.loadStore)
  if (spool.error !== undefined) {
    // The store package is missing: failed like an invalid option.
    await (sender as Sender).destroy()
    if (!inWorker) throw spool.error
    invalid = spool.error
    config = undefined
  }
  // pino sends its configuration (levels, messageKey, errorKey) only to a worker it started itself.
  const pinoWillSendConfig = pinoSendsConfig()
  // Made in build()'s callback, which runs before any line can arrive and
  // before the stream can be flushed or closed; delivery stays undefined when disabled.
  let delivery: Delivery | undefined
  let sink!: { line: (line: string) => void }
  let emit!: ReturnType<typeof createEmit>

  const disable = (err: Bitrix24TransportError): void => {
    write(disabledLine(err))
    sink = new Discard(stats)
  }

  const stream = await build((source) => {
    emit = createEmit(source)
    // What parseLine returns is of no further use: let it flow away.
    source.resume()
    if (config === undefined || sender === undefined) {
      disable(invalid as Bitrix24TransportError)
      return
    }
    // In pino's worker these come from the logger; in-process they are undefined and defaults apply.
    const sent = source as unknown as PinoConfig
    const given = internals.pino ?? {}
    const pino: PinoConfig = {
      levels: sent.levels ?? given.levels,
      messageKey: sent.messageKey ?? given.messageKey,
      errorKey: sent.errorKey ?? given.errorKey
    }
    let minLevel: number | undefined
    if (config.level !== undefined) {
      minLevel = levelNumber(config.level, pino)
      if (minLevel === undefined) {
        const err = new Bitrix24TransportError(ERR_INVALID_OPTION, `pino-bitrix24-workflow: option "level" must be a level of the logger, got ${describe('level', config.level)}`, 'level')
        if (!inWorker) throw err
        disable(err)
        return
      }
    }
    delivery = new Delivery(config, sender, clock, reporter, emit, stats, internals.budget, spool.spool)
    replay(spool.recovered, delivery, new Drops(stats, reporter, emit, config.maxBufferedBytes), stats, reporter, emit)
    sink = new Router({ tokenKey: config.tokenKey, eventKey: config.eventKey, minLevel, levels: pino.levels }, new Formatter(config, pino), delivery, stats)
  }, {
    parseLine: (line: string) => {
      sink.line(line)
      return TAKEN
    },
    metadata: false,
    expectPinoConfig: pinoWillSendConfig,
    close: async () => {
      // What delivery could not settle by closeTimeout stays in the spool for the next start.
      if (delivery !== undefined) {
        await delivery.close()
        return await spool.close()
      }
      await spool.close()
      emit('bitrix24:stats', { ...stats, dropped: { ...stats.dropped } })
      // A client was made for a level the logger turned out not to have.
      await sender?.destroy()
    }
  }) as unknown as TransportStream

  stream.stats = stats
  stream.flush = (cb) => {
    const done = typeof cb === 'function' ? cb : () => {}
    if (delivery === undefined) return done()
    delivery.flush().then(() => done(), done)
  }
  return stream
}

/** `quiet` of options that failed validation: only a plain `true` or its env variable at 1/true counts. */
function askedForQuiet (options: unknown, env: NodeJS.ProcessEnv): boolean {
  const quiet = options !== null && typeof options === 'object' ? (options as Options).quiet : undefined
  const fromEnv = env[OPTIONS.quiet.env]
  return quiet === true || (quiet === undefined && (fromEnv === '1' || fromEnv === 'true'))
}
