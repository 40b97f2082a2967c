/**
 * Errors this package throws carry a stable `code` so that callers can branch
 * on it without parsing messages. Messages never contain a secret: option
 * values of secret options are described by type and length only.
 */
export const ERR_INVALID_OPTION = 'ERR_BITRIX24_INVALID_OPTION'
export const ERR_MISSING_API_KEY = 'ERR_BITRIX24_MISSING_API_KEY'
export const ERR_INSECURE_BASE_URL = 'ERR_BITRIX24_INSECURE_BASE_URL'
export const ERR_INVALID_EVENT_TOKEN = 'ERR_BITRIX24_INVALID_EVENT_TOKEN'
export const ERR_MISSING_PACKAGE = 'ERR_BITRIX24_MISSING_PACKAGE'

export type ErrorCode =
  | typeof ERR_INVALID_OPTION
  | typeof ERR_MISSING_API_KEY
  | typeof ERR_INSECURE_BASE_URL
  | typeof ERR_INVALID_EVENT_TOKEN
  | typeof ERR_MISSING_PACKAGE

export class Bitrix24TransportError extends Error {
  readonly code: ErrorCode
  /** The option at fault, when there is one. */
  readonly option: string | undefined
  /** The environment variable the bad value came from, when it came from one. */
  readonly env: string | undefined

  constructor (code: ErrorCode, message: string, option?: string, env?: string) {
    super(message)
    this.name = 'Bitrix24TransportError'
    this.code = code
    this.option = option
    this.env = env
  }
}
