import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import type { EventEmitter } from 'node:events'
import { isThreadStreamData } from './runtime'
import type { DropReason, Stats } from './stats'

// Events go to the application's own code, which may act on a workflow: they
// carry the full event token. Only stderr, read by people, shortens it.

/** Lines were given up on. */
export interface DropEvent {
  reason: DropReason
  lines: number
  /** '' when the lines were never read for one (a disabled transport). */
  token: string
  /** The server's error code (or a network code) behind the drop, when there was one; for `disabled`, the configuration error's. */
  code: string | undefined
}

/** The key cannot write: nothing more is sent. */
export interface AuthErrorEvent {
  code: string
  status: number
  advice: string
}

/** The server asked sending to pause. */
export interface RateLimitedEvent {
  code: string
  /** How long sending pauses, ms. */
  retryAfter: number
}

/** An activity was completed through the stream. */
export interface CompletedEvent {
  token: string
}

/** An activity may not have been completed: a person may have to finish it. */
export interface CompletionFailedEvent {
  token: string
  reason: DropReason
  code: string | undefined
  /**
   * 'failed': the server did not complete it. 'unknown': its request was in flight when closeTimeout
   * ran out; it may have landed. 'spooled': not completed by closeTimeout, kept in the disk spool
   * (spoolDir): the next start completes it.
   */
  outcome: 'failed' | 'unknown' | 'spooled'
}

/** At start, what the spools of ended processes held (spoolDir): queued before any new line. */
export interface ReplayedEvent {
  lines: number
  completions: number
  /** Workflows with lines or a completion replayed. */
  tokens: number
  /** Tokens whose request was in flight when their process ended: their first lines may be written twice. */
  possibleDuplicates: number
  /** Lines and completions older than spoolMaxAge, dropped as `expired`. */
  expired: number
  /** Spool files read. */
  spools: number
}

/** Each event's payload, by name. */
export interface EventPayloads {
  'bitrix24:drop': DropEvent
  'bitrix24:authError': AuthErrorEvent
  'bitrix24:rateLimited': RateLimitedEvent
  'bitrix24:stats': Stats
  'bitrix24:completed': CompletedEvent
  'bitrix24:completionFailed': CompletionFailedEvent
  'bitrix24:replayed': ReplayedEvent
}

export type EventName = keyof EventPayloads
export type Emit = <N extends EventName>(name: N, payload: EventPayloads[N]) => void

/**
 * Inside pino's worker, events travel to the main thread as thread-stream's
 * EVENT message, so that `transport.on('bitrix24:drop', …)` works there;
 * anywhere else (in-process, or a user's own worker) they are stream events.
 */
export function createEmit (stream: EventEmitter, data: unknown = workerData, mainThread = isMainThread, port = parentPort): Emit {
  if (!mainThread && port !== null && isThreadStreamData(data)) {
    return (name, payload) => {
      port.postMessage({ code: 'EVENT', name, args: [payload] })
    }
  }
  // On the next tick: a listener that throws must not break delivery half-way.
  return (name, payload) => {
    process.nextTick(() => stream.emit(name, payload))
  }
}
