import { workerData } from 'node:worker_threads'

/**
 * Where this transport runs, read from the data its worker was started with.
 * Both checks look at that data, so both live here.
 */

/**
 * Whether pino started this worker itself and will send the logger's
 * configuration (levels, messageKey, errorKey): it says so in the data it
 * gives thread-stream, the same flag pino-abstract-transport checks.
 */
export function pinoSendsConfig (data: unknown = workerData): boolean {
  const shape = data as { workerData?: { pinoWillSendConfig?: unknown } } | null
  return shape !== null && typeof shape === 'object' && typeof shape.workerData === 'object' &&
    shape.workerData !== null && shape.workerData.pinoWillSendConfig === true
}

/**
 * Whether this worker is thread-stream's, recognised by its own shared
 * buffers rather than by pino's options, so a user's own worker is left alone.
 */
export function isThreadStreamData (data: unknown = workerData): boolean {
  const shape = data as { dataBuf?: unknown, stateBuf?: unknown } | null
  return shape !== null && typeof shape === 'object' &&
    shape.dataBuf instanceof SharedArrayBuffer && shape.stateBuf instanceof SharedArrayBuffer
}
