import { workerData } from 'node:worker_threads'

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
