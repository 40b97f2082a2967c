import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ERR_DESTROYED, ERR_NOT_CONNECTED } from '../lib/classify'
import { notSent } from '../lib/client'
import { HttpPool, type RequestOptions } from '../lib/http-pool'
import { startSimulator, type Simulator } from '../lib/simulator'
import { API_KEY } from './fixtures/harness'
import { untracked } from './fixtures/untracked'

const LOG = '/v1/workflows/activity-log'

async function simulator (t: Test, host?: string): Promise<Simulator> {
  const sim = await startSimulator({ apiKeys: [API_KEY], host })
  t.teardown(() => sim.close())
  return sim
}

function pool (t: Test, origin: string, connections = 2): HttpPool {
  const p = new HttpPool(origin, { connections, keepAliveTimeout: 30_000 })
  t.teardown(() => p.destroy())
  return p
}

function post (text: string, signal = new AbortController().signal): RequestOptions {
  return {
    origin: '',
    path: LOG,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify({ eventToken: 'wf.pool', logMessage: text }),
    signal
  }
}

async function read (body: { on: (event: string, listener: (chunk: Buffer) => void) => unknown }): Promise<string> {
  return await new Promise((resolve) => {
    let text = ''
    body.on('data', (chunk) => { text += chunk.toString() })
    body.on('end', () => resolve(text))
  })
}

t.test('a request and its answer: status, headers, body; an IPv6 literal origin too', async (t) => {
  for (const host of ['127.0.0.1', '::1']) {
    const sim = await simulator(t, host)
    const p = pool(t, sim.url)
    const answer = await p.request(post(`over ${host}`))
    t.equal(answer.statusCode, 200, host)
    t.match(answer.headers['content-type'], /json/)
    t.match(JSON.parse(await read(answer.body)), { success: true })
    t.same(sim.entries('wf.pool'), [`over ${host}`], 'the body as sent, with its content-length')
  }
})

t.test('aborted before its connection was made: ERR_NOT_CONNECTED, and nothing was sent', async (t) => {
  const sim = await simulator(t)
  const p = pool(t, sim.url)
  const controller = new AbortController()
  const pending = p.request(post('never', controller.signal))
  // In the same tick: the socket is not even assigned yet.
  controller.abort(new Error('deadline'))
  const err = await pending.then(() => undefined, (e: Error & { code: string }) => e)
  t.match(err, { code: ERR_NOT_CONNECTED, message: /before a connection was made: deadline/ })
  t.equal(notSent(err?.code), true, 'counted as not sent: a retry cannot write it twice')
  t.equal(sim.requests.length, 0)
  t.match(await p.request(post('after')), { statusCode: 200 }, 'the pool goes on')
})

t.test('aborted once connected: the abort reason, as the caller gave it', async (t) => {
  const sim = await simulator(t)
  const p = pool(t, sim.url)
  sim.stall(true)
  const controller = new AbortController()
  const pending = p.request(post('stalled', controller.signal))
  while (sim.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const reason = Object.assign(new Error('no answer within requestTimeout'), { code: 'DEADLINE' })
  controller.abort(reason)
  await t.rejects(pending, reason)
})

t.test('destroy(): requests in flight and after fail with ERR_DESTROYED', async (t) => {
  const sim = await simulator(t)
  const p = pool(t, sim.url)
  sim.stall(true)
  const pending = p.request(post('in flight'))
  while (sim.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  await p.destroy()
  await t.rejects(pending, { code: ERR_DESTROYED, message: /in flight/ })
  await t.rejects(p.request(post('later')), { code: ERR_DESTROYED, message: 'the client was closed' })
  t.equal(sim.requests.length, 1)
})

t.test('connections caps the requests at once; an idle connection is reused', async (t) => {
  const sim = await startSimulator({ apiKeys: [API_KEY], latency: 20 })
  t.teardown(() => sim.close())
  const p = pool(t, sim.url, 2)
  const answers = await Promise.all([1, 2, 3, 4].map(async (i) => {
    const answer = await p.request(post(`m${i}`))
    await read(answer.body)
    return answer.statusCode
  }))
  t.same(answers, [200, 200, 200, 200])
  t.ok(sim.stats().maxConcurrent <= 2, `at most 2 at once (saw ${sim.stats().maxConcurrent})`)
  t.match(await p.request(post('again')), { statusCode: 200 })
})

t.test('an app that reaches the API directly never loads undici (it is for proxies)', async (t) => {
  const index = join(__dirname, '..', 'dist', 'index.js')
  const script = `require(${JSON.stringify(index)})({ apiKey: 'k', baseUrl: 'http://127.0.0.1:9', quiet: true }).then((s) => {
    console.log(Object.keys(require.cache).some((f) => f.includes('/node_modules/undici/')))
    s.end()
  })`
  const run = spawnSync(...untracked(process.execPath, ['-e', script]), { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })
  t.equal(run.stdout.trim(), 'false', run.stderr)
})
