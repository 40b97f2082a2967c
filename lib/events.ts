import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import type { EventEmitter } from 'node:events'
import { isThreadStreamData } from './runtime'

export type EventName = 'bitrix24:drop' | 'bitrix24:authError' | 'bitrix24:rateLimited' | 'bitrix24:stats' | 'bitrix24:completed' | 'bitrix24:completionFailed'
export type Emit = (name: EventName, payload: Record<string, unknown>) => void

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
