import type { PinoConfig } from './format'

/**
 * pino tells a worker it started about the logger (levels, messageKey,
 * errorKey) in one message, sent when `pino(transport)` creates the logger.
 * pino-abstract-transport can wait for it before the stream is ready, but a
 * worker that is not ready keeps the application alive: pino unrefs it only
 * on 'ready', so `pino.transport()` without a logger would never let the
 * process exit. The transport is ready at once instead, listens for the message
 * itself, and holds the lines that arrive before it (see HeldLines).
 */

/** The part of a MessagePort this needs (parentPort in the worker). */
export interface ConfigPort {
  on: (event: 'message', listener: (message: unknown) => void) => unknown
  off: (event: 'message', listener: (message: unknown) => void) => unknown
}

/** Calls `cb` once with pino's configuration; returns what stops listening. */
export function onPinoConfig (port: ConfigPort, cb: (config: PinoConfig) => void): () => void {
  const listener = (message: unknown): void => {
    const msg = message as { code?: unknown, config?: unknown } | null
    if (msg === null || typeof msg !== 'object' || msg.code !== 'PINO_CONFIG') return
    port.off('message', listener)
    const config = msg.config
    cb(config !== null && typeof config === 'object' ? config as PinoConfig : {})
  }
  port.on('message', listener)
  return () => { port.off('message', listener) }
}

/**
 * Lines that arrived before pino's configuration, kept until it comes: they
 * cannot be formatted or filtered without the logger's levels and keys. The
 * configuration is sent before the logger can write a line, but it travels as
 * a message while lines travel through shared memory, so a line can overtake
 * it by a turn of the event loop. Bounded: past `maxBytes` the caller stops
 * waiting and goes on with pino's defaults (counted in characters).
 */
export class HeldLines {
  readonly lines: string[] = []
  /** Characters held: a line's length is read for free, its UTF-8 size is not; V8 holds 1 or 2 bytes each. */
  private chars = 0
  private readonly maxBytes: number
  private readonly full: () => void

  constructor (maxBytes: number, full: () => void) {
    this.maxBytes = maxBytes
    this.full = full
  }

  line (line: string): void {
    this.lines.push(line)
    this.chars += line.length
    if (this.chars > this.maxBytes) this.full()
  }
}
