import type { Dispatcher } from 'undici'
import { Bitrix24TransportError, ERR_INVALID_OPTION } from './errors'
import { HttpPool, type Answer, type Requester, type RequestOptions } from './http-pool'
import { decodableCredentials, describe } from './options'
import { hidden, looksSecret } from './redact'
import { PREFIX } from './prefix'

/**
 * The transport's one HTTP dispatcher, and whether it goes through a proxy.
 * Many companies reach the internet only through one: the `proxy` option
 * names it, else HTTPS_PROXY / HTTP_PROXY / NO_PROXY decide as for curl, and
 * undici's proxy agents carry the requests. Without either, a keep-alive pool
 * to the API origin over Node's own HTTP client (HttpPool), and undici is not loaded.
 */
export interface DispatcherOptions {
  connections: number
  requestTimeout: number
  /** http(s) URL of a proxy for every request (already validated). */
  proxy?: string | undefined
  env?: NodeJS.ProcessEnv
  /** The configured key and session token: a proxy variable holding one is described, never echoed. */
  apiKey?: string
  sessionToken?: string | undefined
}

const KEEP_ALIVE_MS = 30_000

export function createDispatcher (origin: string, opts: DispatcherOptions): Requester {
  const env = opts.env ?? process.env
  // Lower case first, as curl and undici read them.
  const secrets = [opts.apiKey, opts.sessionToken]
  const httpProxy = opts.proxy === undefined ? proxyFromEnv(env, 'http_proxy', 'HTTP_PROXY', secrets) : ''
  const httpsProxy = opts.proxy === undefined ? proxyFromEnv(env, 'https_proxy', 'HTTPS_PROXY', secrets) : ''
  if (opts.proxy === undefined && httpProxy === '' && httpsProxy === '') return new HttpPool(origin, { connections: opts.connections, keepAliveTimeout: KEEP_ALIVE_MS })
  const timeout = opts.requestTimeout
  // A proxy agent makes its own connections: the connect timeout goes to them.
  const proxied = {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: KEEP_ALIVE_MS,
    connect: { timeout },
    // Only a backstop: the client's deadline covers headers and body and ends
    // first, so a timeout always shows as ERR_DEADLINE.
    headersTimeout: timeout + 1000,
    bodyTimeout: timeout + 1000,
    proxyTls: { timeout },
    requestTls: { timeout }
  }
  // Loaded here only: an app that reaches the API directly never loads undici.
  const { EnvHttpProxyAgent, ProxyAgent } = require('undici') as typeof import('undici')
  const agent: Dispatcher = opts.proxy !== undefined
    ? new ProxyAgent({ ...proxied, uri: opts.proxy })
    // Given explicitly, even when empty: the agent must not read another environment than ours.
    : new EnvHttpProxyAgent({ ...proxied, httpProxy, httpsProxy, noProxy: env.no_proxy ?? env.NO_PROXY ?? '' })
  return {
    request: async (request: RequestOptions): Promise<Answer> => await agent.request(request),
    destroy: async () => { await agent.destroy() }
  }
}

/** A proxy URL from the environment, '' when unset; a value that is no http(s) URL fails naming its variable. */
function proxyFromEnv (env: NodeJS.ProcessEnv, lower: string, upper: string, secrets: Array<string | undefined>): string {
  const name = env[lower] !== undefined ? lower : upper
  const value = env[name] ?? ''
  if (value === '') return ''
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {}
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || !decodableCredentials(url)) {
    throw new Bitrix24TransportError(
      ERR_INVALID_OPTION,
      `${PREFIX}env ${name} must be an http: or https: URL such as http://proxy.example.com:3128, got ${looksSecret(value, secrets) ? hidden(value) : describe('proxy', value)}`,
      'proxy',
      name
    )
  }
  return value
}
