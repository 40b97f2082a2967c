import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { Client } from '../lib/client'
import { createDispatcher } from '../lib/dispatcher'
import { HttpPool } from '../lib/http-pool'
import { startSimulator, type Simulator } from '../lib/simulator'
import { createTransport } from '../lib/transport'
import { API_KEY } from './fixtures/harness'
import { repeatedRetryAfter } from './fixtures/repeated-header'

const LOG = '/v1/workflows/activity-log'

interface Proxy {
  url: string
  /** CONNECT tunnels opened. */
  tunnels: number
  /** API requests seen passing through the tunnels. */
  requests: number
  /** Requests sent to the proxy in absolute-URI form (not tunnelled). */
  forwarded: number
  /** Proxy-Authorization of each CONNECT. */
  auth: Array<string | undefined>
}

/**
 * A real forward proxy on loopback: CONNECT opens a tunnel to a loopback port
 * (anything else is refused); the API requests crossing it are counted.
 */
async function startProxy (t: Test, password?: string): Promise<Proxy> {
  const sockets = new Set<net.Socket>()
  const proxy: Proxy = { url: '', tunnels: 0, requests: 0, forwarded: 0, auth: [] }
  const server = http.createServer((_req, res) => {
    proxy.forwarded++
    res.writeHead(502).end()
  })
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    sockets.add(socket)
    proxy.auth.push(req.headers['proxy-authorization'])
    const expected = password === undefined ? undefined : 'Basic ' + Buffer.from(`user:${password}`).toString('base64')
    const [host, port] = (req.url ?? '').split(':')
    if (req.headers['proxy-authorization'] !== expected || host !== '127.0.0.1') {
      socket.end(`HTTP/1.1 ${expected === undefined ? 403 : 407} No\r\n\r\n`)
      return
    }
    proxy.tunnels++
    const upstream = net.connect(Number(port), '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      socket.on('data', (chunk: Buffer) => { proxy.requests += chunk.toString('latin1').split('POST /v1/').length - 1 })
      socket.pipe(upstream).pipe(socket)
    })
    sockets.add(upstream)
    upstream.on('error', () => socket.destroy())
    socket.on('error', () => upstream.destroy())
  })
  server.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return proxy
}

async function simulator (t: Test): Promise<Simulator> {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  return sim
}

function client (t: Test, sim: Simulator, extra: { proxy?: string, env?: NodeJS.ProcessEnv }): Client {
  const c = new Client({ baseUrl: sim.url, apiKey: API_KEY, sessionToken: undefined, requestTimeout: 5000, connections: 2, ...extra })
  t.teardown(() => c.destroy())
  return c
}

t.test('the proxy option: every request goes through it, with its credentials', async (t) => {
  const sim = await simulator(t)
  const proxy = await startProxy(t, 'p@ss:w/rd')
  const c = client(t, sim, { proxy: `http://user:${encodeURIComponent('p@ss:w/rd')}@${proxy.url.slice(7)}`, env: { NO_PROXY: '127.0.0.1' } })
  for (let i = 0; i < 3; i++) t.match(await c.post(LOG, { eventToken: 'wf.proxy', logMessage: `line ${i}` }), { status: 200 })
  t.same(sim.entries('wf.proxy'), ['line 0', 'line 1', 'line 2'])
  t.equal(proxy.requests, 3, 'three requests crossed the proxy')
  t.ok(proxy.tunnels >= 1 && proxy.tunnels <= 2, `kept-alive tunnels, at most one per connection: ${proxy.tunnels}`)
  t.equal(proxy.forwarded, 0)
  t.equal(proxy.auth[0], 'Basic ' + Buffer.from('user:p@ss:w/rd').toString('base64'), 'credentials from the URL, decoded')
})

t.test('HTTP_PROXY from the environment; NO_PROXY bypasses it', async (t) => {
  const sim = await simulator(t)
  const proxy = await startProxy(t)
  const viaEnv = client(t, sim, { env: { HTTP_PROXY: proxy.url } })
  t.match(await viaEnv.post(LOG, { eventToken: 'wf.env', logMessage: 'via the proxy' }), { status: 200 })
  t.equal(proxy.requests, 1, 'through the proxy')

  for (const noProxy of ['127.0.0.1', 'localhost,127.0.0.1', '*']) {
    const bypass = client(t, sim, { env: { HTTP_PROXY: proxy.url, NO_PROXY: noProxy } })
    t.match(await bypass.post(LOG, { eventToken: 'wf.env', logMessage: `direct: ${noProxy}` }), { status: 200 })
  }
  const lower = client(t, sim, { env: { http_proxy: proxy.url, HTTP_PROXY: 'http://127.0.0.1:1', no_proxy: '127.0.0.1' } })
  t.match(await lower.post(LOG, { eventToken: 'wf.env', logMessage: 'lower case wins, no_proxy too' }), { status: 200 })
  t.equal(proxy.requests, 1, 'NO_PROXY: not through the proxy')
  t.equal(sim.entries('wf.env').length, 5, 'every one delivered')
  const other = client(t, sim, { env: { HTTPS_PROXY: 'http://127.0.0.1:1' } })
  t.match(await other.post(LOG, { eventToken: 'wf.env', logMessage: 'HTTPS_PROXY is for https: origins' }), { status: 200 })
})

t.test('through a proxy a repeated header comes as a list (undici): the first Retry-After counts', async (t) => {
  // Node's own client keeps the first of a repeated Retry-After (client.test.ts); undici's agents give both.
  const baseUrl = await repeatedRetryAfter(t)
  const proxy = await startProxy(t)
  const c = new Client({ baseUrl, apiKey: API_KEY, sessionToken: undefined, requestTimeout: 5000, connections: 1, proxy: proxy.url })
  t.teardown(() => c.destroy())
  t.match(await c.post(LOG, { eventToken: 'tok', logMessage: 'x' }), { status: 429, retryAfter: '3' })
  t.equal(proxy.requests, 1, 'through the proxy')
})

t.test('without a proxy: the plain keep-alive pool; the environment is process.env by default', async (t) => {
  for (const env of [{}, { HTTP_PROXY: '', https_proxy: '' }]) {
    const pool = createDispatcher('http://127.0.0.1:9', { connections: 1, requestTimeout: 1000, env })
    t.type(pool, HttpPool)
    await pool.destroy()
  }
  const byDefault = createDispatcher('http://127.0.0.1:9', { connections: 1, requestTimeout: 1000 })
  t.type(byDefault.request, 'function')
  await byDefault.destroy()
})

t.test('a proxy variable that is no http(s) URL fails naming it, credentials hidden', async (t) => {
  for (const [name, value, shown] of [
    ['HTTPS_PROXY', 'socks5://user:s3cret@proxy', '"socks5://…@proxy"'],
    ['http_proxy', 'not a url', '"not a url"'],
    // undici would decode them, and throw a bare URIError.
    ['HTTPS_PROXY', 'http://user:s3cret%zz@proxy', '"http://…@proxy/"']
  ] as const) {
    t.throws(() => createDispatcher('https://example.com', { connections: 1, requestTimeout: 1000, env: { [name]: value } }), {
      code: 'ERR_BITRIX24_INVALID_OPTION',
      option: 'proxy',
      message: `pino-bitrix24-workflow: env ${name} must be an http: or https: URL such as http://proxy.example.com:3128, got ${shown}`
    })
  }
})

t.test('the configured key or session token in a proxy variable is never echoed', async (t) => {
  const token = 'plain-session-token-1'
  for (const options of [{ apiKey: token }, { apiKey: API_KEY, sessionToken: token }]) {
    const err = await createTransport(options, { env: { HTTPS_PROXY: token } }).then(() => undefined, (e: Error) => e)
    t.match(err, { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'proxy', env: 'HTTPS_PROXY', message: /got a string of 21 characters that looks like a key or token \(not shown\)$/ })
    t.notOk(err?.message.includes(token), 'not in the message')
  }
})

t.test('a proxy that refuses: a failure like any other, the password never shown', async (t) => {
  const sim = await simulator(t)
  const proxy = await startProxy(t, 'right')
  const c = client(t, sim, { proxy: `http://user:wrong-s3cret@${proxy.url.slice(7)}` })
  const outcome = await c.post(LOG, { eventToken: 'wf.refused', logMessage: 'x' })
  t.match(outcome, { error: { code: 'ERR_BITRIX24_PROXY_AUTH', message: /407/ }, sent: false })
  t.notOk(JSON.stringify(outcome).includes('s3cret'))
  t.equal(sim.requests.length, 0)
})

t.test('a proxy\'s 407 or other refusal: one line naming it, a configuration error, the key not stopped, no possible duplicate', async (t) => {
  const sim = await simulator(t)
  for (const [password, refusal] of [['right', /proxy authentication failed \(the proxy answered HTTP 407 to CONNECT\): a configuration error/], [undefined, /the proxy refused the connection to the API \(the proxy answered HTTP 403 to CONNECT\): a configuration error/]] as const) {
    const proxy = await startProxy(t, password)
    const stderr: string[] = []
    const stats: Record<string, unknown>[] = []
    const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, flushInterval: 0, proxy: `http://user:wrong-s3cret@${proxy.url.slice(7)}` }, { env: {}, stderr: (l) => { stderr.push(l) } })
    stream.on('bitrix24:stats', (s: Record<string, unknown>) => stats.push(s))
    const logger = pino(stream)
    for (const token of ['wf.r1', 'wf.r2', 'wf.r3']) logger.child({ eventToken: token }).info('line')
    await new Promise<void>((resolve) => stream.flush(() => resolve()))
    logger.child({ eventToken: 'wf.r4' }).info('later: still accepted, the key is not stopped')
    stream.end()
    await new Promise((resolve) => stream.once('close', resolve))
    const problems = stderr.filter((l) => !l.includes(': closed: '))
    t.equal(problems.length, 1, `one line: ${stderr.join('')}`)
    t.match(problems[0], refusal)
    t.notMatch(stderr.join(''), /after the request was sent|s3cret/)
    t.match(stats.at(-1), { requests: 4, retries: 0, possibleDuplicates: 0, dropped: { rejected: 4, auth: 0 } })
    t.equal(sim.requests.length, 0, 'nothing reached the API')
  }
})

t.test('through the transport: lines delivered via the proxy, requests counted', async (t) => {
  const sim = await simulator(t)
  const proxy = await startProxy(t)
  const stderr: string[] = []
  const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, maxRequestsPerSecond: 0, proxy: proxy.url }, { env: {}, stderr: (l) => { stderr.push(l) } })
  const logger = pino(stream)
  for (const token of ['wf.p1', 'wf.p2']) for (let i = 0; i < 5; i++) logger.child({ eventToken: token }).info({ i }, 'line')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  t.equal(sim.entries('wf.p1').length + sim.entries('wf.p2').length, 2, 'one entry per token')
  t.equal(proxy.requests, sim.requests.length, 'every request crossed the proxy')
  t.equal(proxy.requests, 2)
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.same(stderr, [])
})

t.test('in the worker, a bad proxy variable disables the transport with its name', async (t) => {
  const stderr: string[] = []
  const stream = await createTransport({ apiKey: API_KEY }, { worker: true, env: { HTTPS_PROXY: 'ftp://u:s3cret@host' }, stderr: (l) => { stderr.push(l) } })
  stream.end()
  await new Promise((resolve) => stream.once('close', resolve))
  t.match(stderr, [/ERR_BITRIX24_INVALID_OPTION: env HTTPS_PROXY must be an http: or https: URL .* got "ftp:\/\/…@host\/"; transport disabled/])
  t.notOk(stderr.join('').includes('s3cret'))
  await t.rejects(createTransport({ apiKey: API_KEY }, { env: { HTTPS_PROXY: 'ftp://host' } }), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'proxy' }, 'in-process: rejects')
  const bad = 'http://user:s3cret%zz@127.0.0.1:3128'
  const lines: string[] = []
  const disabled = await createTransport({ apiKey: API_KEY, proxy: bad }, { worker: true, env: {}, stderr: (l) => { lines.push(l) } })
  disabled.end()
  await new Promise((resolve) => disabled.once('close', resolve))
  t.match(lines, [/ERR_BITRIX24_INVALID_OPTION: option "proxy" must be .* got "http:\/\/…@127\.0\.0\.1:3128\/"; transport disabled/], 'a proxy option undici cannot decode: coded, named')
  t.notOk(lines.join('').includes('s3cret'))
})
