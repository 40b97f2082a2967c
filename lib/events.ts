import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import type { EventEmitter } from 'node:events'

export type EventName = 'bitrix24:drop' | 'bitrix24:authError' | 'bitrix24:rateLimited' | 'bitrix24:stats' | 'bitrix24:completed' | 'bitrix24:completionFailed'
export type Emit = (name: EventName, payload: Record<string, unknown>) => void

/**
 * Inside pino's worker, events travel to the main thread as thread-stream's
 * EVENT message, so that `transport.on('bitrix24:drop', …)` works there. The
 * worker is recognised by thread-stream's own workerData (its shared buffers),
 * not by pino's options, so a user's own worker thread is left alone.
 */
export function createEmit (stream: EventEmitter, data: unknown = workerData, mainThread = isMainThread, port = parentPort): Emit {
  const shape = data as { dataBuf?: unknown, stateBuf?: unknown } | null
  const threadStream = !mainThread && port !== null && shape !== null && typeof shape === 'object' &&
    shape.dataBuf instanceof SharedArrayBuffer && shape.stateBuf instanceof SharedArrayBuffer
  if (threadStream) {
    return (name, payload) => {
      port.postMessage({ code: 'EVENT', name, args: [payload] })
    }
  }
  // On the next tick: a listener that throws must not break delivery half-way.
  return (name, payload) => {
    process.nextTick(() => stream.emit(name, payload))
  }
}
