/**
 * Errors this package throws carry a stable `code` so that callers can branch
 * on it without parsing messages. Messages never contain a secret: option
 * values of secret options are described by type and length only.
 */
export const ERR_INVALID_OPTION = 'ERR_BITRIX24_INVALID_OPTION'
export const ERR_MISSING_API_KEY = 'ERR_BITRIX24_MISSING_API_KEY'
export const ERR_INSECURE_BASE_URL = 'ERR_BITRIX24_INSECURE_BASE_URL'
export const ERR_INVALID_EVENT_TOKEN = 'ERR_BITRIX24_INVALID_EVENT_TOKEN'
export const ERR_UNKNOWN_OPTION = 'ERR_BITRIX24_UNKNOWN_OPTION'
/** An option needs an optional peer dependency that is not installed (ioredis for redisUrl). */
export const ERR_MISSING_PACKAGE = 'ERR_BITRIX24_MISSING_PACKAGE'
/** A bad argument of a function (runActivity's logger or handler): thrown as a TypeError. */
export const ERR_INVALID_ARGUMENT = 'ERR_BITRIX24_INVALID_ARGUMENT'

export type ErrorCode =
  | typeof ERR_INVALID_OPTION
  | typeof ERR_MISSING_API_KEY
  | typeof ERR_INSECURE_BASE_URL
  | typeof ERR_INVALID_EVENT_TOKEN
  | typeof ERR_UNKNOWN_OPTION
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

/**
 * A plain Error with a `code` (and a `name`, when given), as Node's network
 * errors are: how a request's failure reaches classify(), not an error thrown to callers.
 */
export function codedError (code: string, message: string, name?: string): Error & { code: string } {
  const err = new Error(message) as Error & { code: string }
  err.code = code
  if (name !== undefined) err.name = name
  return err
}
