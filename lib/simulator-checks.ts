// The checks the Vibe API documents before a call reaches Bitrix24: the key
// (and an app key's user session), then the shape of the body. Each refusal
// is the documented status, code and message.

import type http from 'node:http'

const LOG_PARAMS_MESSAGE = 'Required: eventToken (string), logMessage (string)'
const EVENT_PARAMS_MESSAGE = 'Required: eventToken (string); optional: returnValues (object), logMessage (string)'

/** A refusal before the call reaches Bitrix24: status, code, message, hint, headers. */
export type Refusal = [number, string, string, string?, Record<string, string>?]

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function headerText (req: http.IncomingMessage, name: string): string {
  const value = req.headers[name]
  return typeof value === 'string' ? value.trim() : ''
}

/** The keys and sessions a simulator accepts. */
export interface Keys { api: Set<string>, app: Set<string>, sessions: Set<string>, expired: Set<string> }

/** Why the key (and, with an app key, the user session) is refused, or undefined. */
export function authRefusal (req: http.IncomingMessage, key: string, keys: Keys): Refusal | undefined {
  if (key === '') return [401, 'MISSING_API_KEY', 'X-Api-Key header not provided']
  if (keys.app.has(key)) {
    const bearer = /^Bearer\s+(\S+)$/i.exec(headerText(req, 'authorization'))
    if (bearer === null) return [401, 'INVALID_APP_KEY', 'An app key needs Authorization: Bearer <user session token>']
    if (keys.expired.has(bearer[1])) return [401, 'TOKEN_EXPIRED', 'The OAuth user session has expired', 'Reauthorize via /v1/oauth/authorize']
    if (!keys.sessions.has(bearer[1])) return [401, 'INVALID_API_KEY', 'Invalid or expired session token']
  } else if (!keys.api.has(key)) {
    return [401, 'INVALID_API_KEY', 'Invalid or expired API key']
  }
  return undefined
}

/** A well-formed call's fields: the token, the trimmed message, the return values. */
export interface Call { eventToken: string, message: string, logMessage: unknown, returnValues: unknown }

/** The call's fields, or why its shape is refused (the documented MISSING_PARAMS, or Bitrix24's empty message). */
export function readCall (req: http.IncomingMessage, body: unknown, isLog: boolean): Call | Refusal {
  const missing: Refusal = [400, 'MISSING_PARAMS', isLog ? LOG_PARAMS_MESSAGE : EVENT_PARAMS_MESSAGE]
  const contentType = headerText(req, 'content-type').split(';')[0].trim().toLowerCase()
  if (contentType !== 'application/json' || !isPlainObject(body)) return missing
  const { eventToken, logMessage, returnValues } = body
  if (typeof eventToken !== 'string' || eventToken === '') return missing
  if (isLog ? typeof logMessage !== 'string' : logMessage !== undefined && typeof logMessage !== 'string') return missing
  if (!isLog && returnValues !== undefined && !isPlainObject(returnValues)) return missing
  // Bitrix24 trims messages and refuses an empty one; on the event call the
  // message is optional, so an empty one there simply writes nothing.
  const message = typeof logMessage === 'string' ? logMessage.trim() : ''
  if (isLog && message === '') return [422, 'BITRIX_ERROR', 'Bitrix24 rejected the call: empty log message']
  return { eventToken, message, logMessage, returnValues }
}
