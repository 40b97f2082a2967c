import type { Writable } from 'node:stream'
import { Client } from './client'
import { type Clock, systemClock } from './clock'
import { Delivery, type Sender } from './delivery'
import { Discard, disabledLine } from './disabled'
import { Bitrix24TransportError, ERR_INVALID_OPTION, ERR_MISSING_PACKAGE } from './errors'
import { installed } from './peer'
import { createEmit } from './events'
import { clockFormat, Formatter, levelNumber, type PinoConfig } from './format'
import { OPTIONS } from './option-table'
import { type Config, describe, type Options, parseOptions } from './options'
import { unknownOptionsError, withoutUnknown } from './unknown-options'
import { redactorFor } from './redact'
import { oneLine, Reporter, writeStderr } from './reporter'
import { LocalBudget, type RequestBudget } from './request-budget'
import { Router } from './router'
import { isThreadStreamData, pinoSendsConfig } from './runtime'
import { type ConfigPort, HeldLines, onPinoConfig } from './pino-config'
import { parentPort } from 'node:worker_threads'
import { Drops } from './drops'
import { LineSplitter, MAX_LINE_LENGTH } from './line-splitter'
import { replay } from './replay'
import { createBudget } from './shared-budget'
import { startSpool } from './spool'
import { createStats, type Stats } from './stats'
import { PREFIX } from './prefix'

/** The stream the factory returns: what pino writes to, plus delivery's controls. */
export type TransportStream = Writable & {
  /** Calls back once every line written before it is delivered or given up on. */
  flush: (cb?: (err?: Error) => void) => void
  /** Live counters. */
  stats: Stats
  /** Takes one line read elsewhere (the pipe mode splits stdin itself), without its newline: it is not split again. */
  line: (line: string) => void
  /** A line read elsewhere was too long to hold: counted as received and dropped (lineTooLong), with its drop event. */
  lineTooLong: () => void
  /** Whether it writes nothing to stderr: `quiet` as resolved once here from the options and the environment. */
  quiet: boolean
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
  /** Where pino's configuration message arrives (default: the worker's parentPort). */
  port?: ConfigPort | null
  /** Whether a package can be loaded (default: require.resolve finds it). */
  installed?: (name: string) => boolean
  /** Whether pino will send its configuration (default: read from the worker's data). */
  pinoSendsConfig?: boolean
  /** How the spool's store package is loaded (default: require), to prove the missing-package path in-process. */
  loadStore?: (name: string) => unknown
}

// How long lines wait for pino's configuration before pino's defaults apply.
// It is sent before the first line and only a turn of the event loop behind it:
// only a stream written to without a logger waits this long.
const CONFIG_WAIT = 1000

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
  // In the worker an unknown name is reported and left out; in-process parseOptions rejects it.
  const unknown = inWorker ? unknownOptionsError(options) : undefined
  let missing: Bitrix24TransportError | undefined
  try {
    config = parseOptions(inWorker ? withoutUnknown(options) : options, internals.env)
    if (config.redisUrl !== undefined && !(internals.installed ?? installed)('ioredis')) {
      missing = new Bitrix24TransportError(ERR_MISSING_PACKAGE, `${PREFIX}option "redisUrl" needs the package ioredis: npm install ioredis`, 'redisUrl')
      if (!inWorker) throw missing
      // In the worker, logging goes on as without Redis: each process paces itself.
      config = { ...config, redisUrl: undefined }
    }
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
  // Made now, before pino is told the transport is ready, rather than when the first lines wait for it.
  if (config !== undefined) clockFormat(config.timeZone)
  const stats = createStats()
  const stderr = internals.stderr ?? writeStderr
  // A quiet transport writes nothing; an invalid one honours quiet when it was asked for plainly.
  const quiet = config?.quiet ?? askedForQuiet(options, internals.env ?? process.env)
  const write = quiet ? () => {} : stderr
  // Built once: every stderr line of this transport goes through it.
  const reporter = new Reporter(write, clock, config === undefined ? undefined : redactorFor(config))
  if (missing !== undefined) write(`${PREFIX}${missing.code}: option "redisUrl" needs the package ioredis (npm install ioredis); until then each process paces itself\n`)
  if (unknown !== undefined) write(`${oneLine(`${PREFIX}${unknown.code} (ignored; the other options apply): ${unknown.message.replace(PREFIX, '')}`, 199)}\n`)
  // The disk spool, and what earlier processes left in it, before any line is read.
  const started = await startSpool(config, stats, (text) => reporter.always(text), clock.now(), internals.loadStore)
  const { spool, close: closeSpool } = started
  // What earlier processes left is queued once, at start: held only until then, not for the transport's life.
  let recovered = started.recovered
  if (started.error !== undefined) {
    // The store package is missing: failed like an invalid option.
    await (sender as Sender).destroy()
    if (!inWorker) throw started.error
    invalid = started.error
    config = undefined
  }
  // pino sends its configuration (levels, messageKey, errorKey) only to a worker it started itself.
  const pinoWillSendConfig = internals.pinoSendsConfig ?? pinoSendsConfig()
  // Made in build()'s callback, which runs before any line can arrive and
  // before the stream can be flushed or closed; delivery stays undefined when disabled.
  let delivery: Delivery | undefined
  let sink!: { line: (line: string) => void }

  const disable = (err: Bitrix24TransportError): void => {
    write(disabledLine(err))
    sink = new Discard(stats, emit, err.code)
  }

  // Lines held until pino's configuration arrives; set only while waiting for it.
  let held: HeldLines | undefined
  let stopListening = (): void => {}
  let fallback: unknown

  /** Makes delivery and the router once what pino says about the logger is known. */
  const start = (sent: PinoConfig): void => {
    stopListening()
    if (fallback !== undefined) clock.clearTimeout(fallback)
    const waiting = held
    held = undefined
    // Called only once both are made (an invalid configuration disables the transport instead).
    const cfg = config as Config
    // In pino's worker these come from the logger; in-process they are undefined and defaults apply.
    const given = internals.pino ?? {}
    const pino: PinoConfig = {
      levels: sent.levels ?? given.levels,
      messageKey: sent.messageKey ?? given.messageKey,
      errorKey: sent.errorKey ?? given.errorKey
    }
    let minLevel: number | undefined
    if (cfg.level !== undefined) {
      minLevel = levelNumber(cfg.level, pino)
      if (minLevel === undefined) {
        const err = new Bitrix24TransportError(ERR_INVALID_OPTION, `${PREFIX}option "level" must be a level of the logger, got ${describe('level', cfg.level)}`, 'level')
        if (!inWorker) throw err
        disable(err)
        for (const line of waiting?.lines ?? []) sink.line(line)
        return
      }
    }
    // This process's own pacer and pause, or, with redisUrl, one bucket shared by every process on the key.
    const budget = internals.budget ?? createBudget(cfg, clock, reporter, new LocalBudget(cfg.maxRequestsPerSecond, cfg.burst, clock, cfg.maxRetryDelay))
    delivery = new Delivery(cfg, sender as Sender, clock, reporter, emit, stats, budget, spool)
    // What an earlier process left in the spool goes before any new line of its token.
    replay(recovered, delivery, new Drops(stats, reporter, emit, cfg.maxBufferedBytes), stats, reporter, emit)
    recovered = undefined
    sink = new Router({ tokenKey: cfg.tokenKey, eventKey: cfg.eventKey, minLevel, levels: pino.levels }, new Formatter(cfg, pino), delivery, stats)
    for (const line of waiting?.lines ?? []) sink.line(line)
  }
  /** Stops waiting for pino's configuration: pino's defaults apply. */
  const startWithDefaults = (): void => {
    if (held !== undefined) start({})
  }

  // pino writes lines to this stream (in the worker, as strings); each is handed
  // to the sink as it is cut, up to MAX_LINE_LENGTH characters.
  const lineTooLong = (): void => {
    stats.received++
    stats.dropped.lineTooLong++
    emit('bitrix24:drop', { reason: 'lineTooLong', lines: 1, token: '', code: undefined })
  }
  const stream = new LineSplitter(MAX_LINE_LENGTH, (line) => { sink.line(line) }, lineTooLong) as unknown as TransportStream
  const emit = createEmit(stream)
  // Ended (or destroyed): what delivery holds is delivered or given up on by closeTimeout, then 'close'.
  stream._destroy = (_err, cb) => {
    close().then(() => cb(null), cb)
  }
  const close = async (): Promise<void> => {
    startWithDefaults()
    // What delivery could not settle by closeTimeout stays in the spool for the next start.
    if (delivery !== undefined) {
      await delivery.close()
      return await closeSpool()
    }
    await closeSpool()
    emit('bitrix24:stats', { ...stats, dropped: { ...stats.dropped } })
    // A client was made for a level the logger turned out not to have.
    await sender?.destroy()
  }
  if (config === undefined || sender === undefined) {
    disable(invalid as Bitrix24TransportError)
  } else {
    const port = internals.port ?? parentPort
    if (!pinoWillSendConfig || port === null) {
      start({})
    } else {
      const waiting = new HeldLines(config.maxBufferedBytes, startWithDefaults)
      held = waiting
      sink = {
        line: (line) => {
          // The configuration comes a turn of the event loop behind the first lines at most;
          // a stream written to without a logger never gets one.
          if (waiting.lines.length === 0) fallback = clock.setTimeout(startWithDefaults, CONFIG_WAIT)
          waiting.line(line)
        }
      }
      stopListening = onPinoConfig(port, start)
    }
  }

  stream.stats = stats
  stream.quiet = quiet
  stream.line = (line) => { sink.line(line) }
  stream.lineTooLong = lineTooLong
  stream.flush = (cb) => {
    const done = typeof cb === 'function' ? cb : () => {}
    startWithDefaults()
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
