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
