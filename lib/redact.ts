/**
 * What error messages may repeat of a value they were given. A key pasted into
 * the wrong option or flag, or a URL with credentials, is described, never echoed.
 */

// Vibe keys are `vibe_api_…` (personal) and `vibe_app_…` (app): whatever option
// such a value was given to, it is a key.
const VIBE_KEY = /vibe_ap[ip]_/i
// A configured secret this long is looked for inside other values too (a key in a
// URL's path); a shorter one only as the whole value, lest it match by chance.
const MIN_INSIDE = 8

/** Whether a value looks like a Vibe key or holds one of the configured secrets. */
export function looksSecret (value: string, secrets: ReadonlyArray<string | undefined> = []): boolean {
  if (VIBE_KEY.test(value)) return true
  for (const secret of secrets) {
    if (secret === undefined || secret === '') continue
    if (value === secret || (secret.length >= MIN_INSIDE && value.includes(secret))) return true
  }
  return false
}

/** How a secret-looking value is described instead of shown. */
export function hidden (value: string): string {
  return `a string of ${value.length} characters that looks like a key or token (not shown)`
}

/**
 * A URL as an error message may show it: no userinfo, query or fragment. The
 * URL parser decides where credentials end (a password may hold `@` or `/`,
 * WHATWG reads `\` as `/`); and since whatever precedes an `@` the parser did
 * not take as userinfo may be a password it split elsewhere, that is hidden too.
 */
export function redactUrl (value: string): string {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {
    url = undefined
  }
  const rest = (text: string): string => text.replace(/[?#][\s\S]*$/, '?…')
  if (url !== undefined && (url.username !== '' || url.password !== '')) {
    // The parser ends userinfo at the first '@': of a password holding '@' and '/'
    // ('p@ss/word'), the rest would show as host and path.
    const where = url.host + url.pathname
    return `${url.protocol}//…@${where.slice(where.lastIndexOf('@') + 1)}${url.search !== '' || url.hash !== '' ? '?…' : ''}`
  }
  const at = value.lastIndexOf('@')
  if (at !== -1) {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(value)?.[0] ?? ''
    return `${scheme}…@${rest(value.slice(at + 1))}`
  }
  return rest(value)
}

/**
 * The configured secrets taken out of a message: built once from the config
 * (the API key, the session token, the credentials of the proxy and Redis
 * URLs, as given and decoded), and applied by the reporter to every line it
 * writes, so that a server or a library that echoes one cannot put it on
 * stderr. A secret shorter than MIN_INSIDE is left alone: replaced inside
 * text, it would cut words that merely contain it.
 */
export class Redactor {
  /** Longest first, so that a password inside a longer secret does not leave it half-cut. */
  private readonly secrets: string[]

  /** `minLength`: shorter secrets are left alone (default MIN_INSIDE; 1 where every one must go, as a Redis password). */
  constructor (secrets: ReadonlyArray<string | undefined>, minLength = MIN_INSIDE) {
    const long = secrets.filter((s): s is string => s !== undefined && s.length >= Math.max(1, minLength))
    this.secrets = [...new Set(long)].sort((a, b) => b.length - a.length)
  }

  redact (text: string): string {
    for (const secret of this.secrets) if (text.includes(secret)) text = text.split(secret).join('…')
    return text
  }
}

/** The user name and password of a URL, as written and decoded; none when it is no URL. */
export function credentials (value: string | undefined): string[] {
  if (value === undefined) return []
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return []
  }
  const parts: string[] = []
  for (const part of [url.username, url.password]) {
    if (part === '') continue
    parts.push(part)
    try {
      parts.push(decodeURIComponent(part))
    } catch {}
  }
  return parts
}

/** The one redactor of a transport, from its resolved options. */
export function redactorFor (config: { apiKey: string, sessionToken: string | undefined, proxy: string | undefined, redisUrl: string | undefined }): Redactor {
  return new Redactor([config.apiKey, config.sessionToken, ...credentials(config.proxy), ...credentials(config.redisUrl)])
}
