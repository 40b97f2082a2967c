import FakeTimers from '@sinonjs/fake-timers'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import type { Test } from 'tap'
import t from 'tap'
import { systemClock } from '../lib/clock'
import { parseOptions } from '../lib/options'
import { LocalBudget } from '../lib/request-budget'
import { bucketKey } from '../lib/redis-bucket'
import { Reporter } from '../lib/reporter'
import { createBudget, SharedBudget, type SharedBudgetOptions } from '../lib/shared-budget'
import { API_KEY, waitFor } from './fixtures/harness'
import { inspect, needsRedis, startRedis } from './fixtures/redis'

// Redis keeps time by the wall clock, so these run on the real clock, with
// bounded waits on conditions and rates high enough to keep them short.

const BASE = 'http://127.0.0.1:9'
const PASSWORD = 'redis_pw_not_to_be_shown'

interface Made {
  budget: SharedBudget
  stderr: string[]
  changes: () => number
  /** What the scheduler would do on a change. */
  onChange: (fn: () => void) => void
}

function make (t: Test, url: string, opts: Partial<SharedBudgetOptions> = {}): Made {
  const stderr: string[] = []
  const rate = opts.rate ?? 8
  const burst = opts.burst ?? 4
  const budget = new SharedBudget({
    redisUrl: url,
    apiKey: API_KEY,
    baseUrl: BASE,
    rate,
    burst,
    clock: systemClock,
    reporter: new Reporter((text) => { stderr.push(text) }, systemClock),
    fallback: new LocalBudget(rate, burst, systemClock, 30_000),
    timeout: 300,
    probeInterval: 100,
    maxPause: 30_000,
    ...opts
  })
  let changes = 0
  let then = () => {}
  budget.onChange(() => {
    changes++
    then()
  })
  t.teardown(() => budget.close())
  return { budget, stderr, changes: () => changes, onChange: (fn) => { then = fn } }
}

/**
 * Whether the bucket in Redis paces the budget now, as the scheduler sees it: its
 * waits hold even while closing (connecting or shared, not pacing locally), and it
 * has told a change (which a connecting budget never does: only Redis's answer or
 * the fallback do).
 */
function shared (m: Made): boolean {
  return m.changes() > 0 && m.budget.holdsWhileClosing()
}

/** Whether it paces this process alone (the fallback): its waits no longer hold at close. */
function local (m: Made): boolean {
  return !m.budget.holdsWhileClosing()
}

/** Takes whatever the budget grants, as a scheduler would (no take while a pause holds), until `count` were granted in all. */
function drive (made: Made[], count: number): Promise<number[]> {
  const budgets = made.map((m) => m.budget)
  const granted = budgets.map(() => 0)
  return new Promise((resolve) => {
    const total = () => granted.reduce((a, b) => a + b, 0)
    const timers = new Set<NodeJS.Timeout>()
    const pump = (i: number) => {
      const budget = budgets[i] as SharedBudget
      while (total() < count) {
        const now = Date.now()
        const paused = budget.pausedUntil()
        const wait = now < paused ? paused - now : budget.take(now)
        if (wait > 0) {
          timers.add(setTimeout(() => pump(i), wait))
          return
        }
        granted[i]++
      }
      for (const timer of timers) clearTimeout(timer)
      resolve(granted)
    }
    made.forEach((m, i) => {
      m.onChange(() => pump(i))
      pump(i)
    })
  })
}

/** Waits, bounded, for the shared bucket in Redis to hold `rate`. */
async function storedRate (redis: { hget: (key: string, field: string) => Promise<string | null> }, rate: number, what: string): Promise<void> {
  const start = Date.now()
  while (Number(await redis.hget(bucketKey(API_KEY, BASE), 'rate')) !== rate) {
    if (Date.now() - start > 5000) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

t.test('without redisUrl the local budget is the budget, and no Redis client is made', async (t) => {
  const local = new LocalBudget(2, 5, systemClock, 30_000)
  const config = parseOptions({ apiKey: API_KEY, baseUrl: BASE }, {})
  t.equal(createBudget(config, systemClock, new Reporter(() => {}, systemClock), local), local)
})

t.test('with a real Redis', needsRedis(), async (t) => {
  const server = await startRedis(t, { password: PASSWORD })
  const redis = inspect(t, server.url)

  t.test('createBudget makes a shared budget when redisUrl is set', async (t) => {
    const config = parseOptions({ apiKey: API_KEY, baseUrl: BASE, redisUrl: server.url }, {})
    const budget = createBudget(config, systemClock, new Reporter(() => {}, systemClock), new LocalBudget(2, 5, systemClock, 30_000))
    t.ok(budget instanceof SharedBudget)
    // No listener yet: news are simply not told. Connecting, the budget tells the scheduler to wait
    // for the connection (connectTimeout, 5 s here); shared, at most for a call to Redis (500 ms).
    await waitFor(() => budget.take(Date.now()) <= 500, 'connected')
    await budget.close()
    budget.pause(Date.now() + 1000)
    // Whatever permits it still held (at most the burst), none more is fetched: it only says to wait.
    let wait = 0
    for (let i = 0; i < 10 && wait === 0; i++) wait = budget.take(Date.now())
    t.ok(wait > 0, 'a closed budget calls Redis no more')
  })

  t.test('two budgets on one key share one bucket: together they get what one would', async (t) => {
    await redis.del(bucketKey(API_KEY, BASE))
    const a = make(t, server.url)
    const b = make(t, server.url)
    const start = Date.now()
    // 4 at once, then 8 a second: 12 permits take at least a second whoever asks.
    const granted = await drive([a, b], 12)
    const elapsed = Date.now() - start
    t.ok(elapsed >= 900, `12 permits over ${elapsed} ms`)
    t.ok(shared(a) && shared(b), 'both shared')
    t.ok((granted[0] as number) > 0 && (granted[1] as number) > 0, `both got permits: ${granted.join(' + ')}`)
    t.ok(a.changes() > 0, 'permits arriving are told to the scheduler')
    t.same(a.stderr, [])
    t.same((await redis.keys('*')).filter((k) => k.includes(API_KEY)), [], 'the API key is nowhere in Redis')
  })

  t.test('a pause asked by one holds for the other; so does a slow-down', async (t) => {
    await redis.del(bucketKey(API_KEY, BASE))
    const a = make(t, server.url)
    const b = make(t, server.url)
    await waitFor(() => shared(a) && shared(b), 'both connected')
    a.budget.slowDown(Date.now())
    const until = Date.now() + 1000
    a.budget.pause(until)
    t.equal(a.budget.pausedUntil(), until)
    t.ok(a.budget.pausedUntil() > Date.now(), 'the one that met it waits')
    await storedRate(redis, 4, 'the slow-down in Redis')
    // b learns it on its next call to Redis, here the one its next take makes.
    b.budget.take(Date.now())
    await waitFor(() => b.budget.pausedUntil() > Date.now() + 500, 'the pause reaching b')
    t.ok(b.budget.pausedUntil() - Date.now() > 500, 'b waits for it too')
    // The same pause met by b as well: told to Redis at once, not when b next asks for a permit.
    b.budget.pause(until)
    await storedRate(redis, 4, 'the halved rate, the one every process on the key takes from')
    a.budget.speedUp()
    a.budget.observe(10, 5, Date.now() + 1000)
    await drive([b], 1)
    t.ok(Date.now() >= until - 50, 'b got its permit when the pause was over')
  })

  t.test('sparse requests cost the shared bucket one permit each: permits held past their time go back', async (t) => {
    await redis.del(bucketKey(API_KEY, BASE))
    // This process's clock is a fake one, so permits outlive their time without sleeping; Redis keeps its own.
    const fake = FakeTimers.createClock(1_700_000_000_000)
    const clock = { now: () => fake.now, setTimeout: (fn: () => void, ms: number) => fake.setTimeout(fn, ms), clearTimeout: (h: unknown) => { fake.clearTimeout(h as FakeTimers.TimerId) }, unref: () => {} }
    // A rate so low that nothing drips in while the test runs: what the bucket lost is what was taken.
    const a = make(t, server.url, { rate: 0.001, burst: 10, clock, fallback: new LocalBudget(0.001, 10, clock, 30_000) })
    await waitFor(() => shared(a), 'connected')
    const requests = 5
    for (let i = 0; i < requests; i++) {
      let changes = a.changes()
      while (a.budget.take(clock.now()) > 0) {
        await waitFor(() => a.changes() > changes, 'a permit')
        changes = a.changes()
      }
      // Nothing more to send for a while: the second permit fetched outlives its time.
      fake.tick(5000)
    }
    const spent = 10 - Number(await redis.hget(bucketKey(API_KEY, BASE), 'tokens'))
    // Each request, plus at most the one permit still held.
    t.ok(spent <= requests + 1, `${requests} requests took ${spent.toFixed(2)} permits from the shared bucket`)
  })

  t.test('X-RateLimit-Remaining: 0 seen by one pauses every process on the key until the reset', async (t) => {
    await redis.del(bucketKey(API_KEY, BASE))
    const a = make(t, server.url)
    const b = make(t, server.url)
    await waitFor(() => shared(a) && shared(b), 'both connected')
    const reset = Date.now() + 1000
    a.budget.observe(300, 0, reset)
    t.ok(a.budget.pausedUntil() >= reset, 'the one that saw it waits for the reset')
    t.ok(a.budget.pausedUntil() - Date.now() > 500, 'and takes nothing meanwhile')
    b.budget.take(Date.now())
    await waitFor(() => b.budget.pausedUntil() > Date.now() + 500, 'the pause reaching b')
    a.budget.observe(300, 5, reset)
    a.budget.observe(300, 0, 0)
    t.ok(a.budget.pausedUntil() <= reset + 50, 'headers with something left, or unusable, pause nothing more')
  })

  t.test('a pause stored in Redis is cut to this process\'s maxRetryDelay, for good, and said once with its time left', async (t) => {
    const a = make(t, server.url, { maxPause: 1500 })
    await waitFor(() => shared(a), 'connected')
    // Written by hand, as anyone who can write Redis could: an hour less a few minutes.
    const redisNow = async (): Promise<number> => {
      const [seconds, micros] = await redis.time()
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
    }
    await redis.hset(bucketKey(API_KEY, BASE), 'pause', String(await redisNow() + 3_500_000), 'rate', '1e9')
    a.budget.pause(0)
    await waitFor(() => a.budget.pausedUntil() > Date.now(), 'the shared pause learned')
    t.ok(a.budget.pausedUntil() - Date.now() <= 1500, `held ${a.budget.pausedUntil() - Date.now()} ms, not an hour`)
    t.equal(Number(await redis.hget(bucketKey(API_KEY, BASE), 'rate')), 8, 'a stored rate above the local one is not taken: the script holds it to the caller\'s')
    t.equal(a.stderr.length, 1)
    t.match(a.stderr[0], /^pino-bitrix24-workflow: a pause shared through Redis \(redis:\/\/127\.0\.0\.1:\d+\) holds requests for [12] s more: another process on this key met a rate limit \(pauses are cut to maxRetryDelay, 1500 ms\)/)
    t.ok(Number(await redis.hget(bucketKey(API_KEY, BASE), 'pause')) <= await redisNow() + 1500, 'cut where it is stored: it ends for every process')
    t.same(await drive([a], 2), [2], 'then permits come again')
    t.equal(a.stderr.length, 1, 'said once')
    t.notMatch(a.stderr.join(''), 'redis_pw')
  })

  t.test('Redis killed: local pacing with one stderr line; Redis back: shared again', async (t) => {
    const a = make(t, server.url)
    t.equal(a.budget.holdsWhileClosing(), true, 'connecting: flush and close keep to it')
    await waitFor(() => shared(a), 'connected')
    t.equal(a.budget.holdsWhileClosing(), true, 'shared: flush and close keep to it')
    await drive([a], 2)
    await server.kill()
    a.budget.speedUp()
    a.budget.pause(Date.now() + 50)
    await waitFor(() => local(a), 'the fallback')
    t.equal(a.budget.holdsWhileClosing(), false, 'pacing locally: as alone')
    t.equal(a.stderr.length, 1, 'one line')
    t.match(a.stderr[0], /^pino-bitrix24-workflow: Redis \(redis:\/\/127\.0\.0\.1:\d+\) is unreachable or slow \(.+\); each process paces itself/)
    await drive([a], 3)
    a.budget.slowDown(Date.now())
    a.budget.speedUp()
    a.budget.pause(Date.now() + 10)
    t.ok(a.changes() > 0)
    await server.restart()
    await waitFor(() => shared(a), 'shared again', 10_000)
    t.equal(a.stderr.length, 2)
    t.match(a.stderr[1], /Redis \(redis:\/\/127\.0\.0\.1:\d+\) answers again/)
    await drive([a], 2)
    t.notMatch(a.stderr.join(''), 'redis_pw')
    // A second outage is told too, not taken for the first one again.
    await server.kill()
    a.budget.slowDown(Date.now())
    await waitFor(() => local(a), 'the second fallback')
    t.equal(a.stderr.length, 3)
    t.match(a.stderr[2], /is unreachable or slow/)
    await server.restart()
    await waitFor(() => shared(a), 'shared once more', 10_000)
    t.equal(a.stderr.length, 4)
    t.match(a.stderr[3], /answers again/)
  })

  t.test('a slow Redis counts as a missing one', async (t) => {
    const a = make(t, server.url, { timeout: 200 })
    await waitFor(() => shared(a), 'connected')
    await redis.ping()
    const sleeping = redis.call('DEBUG', 'SLEEP', '1')
    a.budget.slowDown(Date.now())
    await waitFor(() => local(a), 'the fallback')
    t.match(a.stderr[0], /unreachable or slow \(Command timed out\)/)
    await sleeping
    await waitFor(() => shared(a), 'shared again', 10_000)
  })

  t.test('at start-up a slow first answer is waited for, not taken for an outage: no local burst', async (t) => {
    // Redis takes the connection and answers INFO, but holds every write (the bucket script) for 1.5 s.
    await redis.call('CLIENT', 'PAUSE', '1500', 'WRITE')
    const a = make(t, server.url, { timeout: 200 })
    t.ok(a.budget.take(Date.now()) > 0, 'no slot before the first answer')
    await waitFor(() => shared(a), 'the first answer', 10_000)
    t.same(a.stderr, [], 'never reported down')
    t.same(await drive([a], 1), [1])
  })

  t.test('a Redis that takes the connection and never answers: local pacing after connectTimeout', async (t) => {
    const held: Socket[] = []
    const tarpit = createServer((socket) => { held.push(socket) })
    await new Promise<void>((resolve) => tarpit.listen(0, '127.0.0.1', resolve))
    t.teardown(() => {
      for (const socket of held) socket.destroy()
      tarpit.close()
    })
    const a = make(t, `redis://127.0.0.1:${(tarpit.address() as AddressInfo).port}`, { connectTimeout: 300 })
    await waitFor(() => a.stderr.length > 0, 'the fallback')
    t.match(a.stderr[0], /unreachable or slow \(no answer within 300 ms/)
    t.equal(a.budget.take(Date.now()), 0, 'the local pacer serves meanwhile')
  })

  t.test('a wrong password: local pacing, and neither password is shown', async (t) => {
    const wrong = server.url.replace(encodeURIComponent(PASSWORD), 'redis_pw_wrong_one')
    const a = make(t, wrong)
    t.ok(a.budget.take(Date.now()) > 0, 'while it connects, requests wait')
    await waitFor(() => a.stderr.length > 0, 'the fallback')
    t.match(a.stderr[0], /unreachable or slow \(WRONGPASS/, 'a refused AUTH is a failed connection: no deadline waited out')
    t.notMatch(a.stderr.join(''), 'redis_pw')
    t.equal(a.budget.take(Date.now()), 0, 'the local pacer serves meanwhile')
  })

  t.test('a Redis behind a password that is busy at start: AUTH timing out is no failed connection, the budget waits and shares', async (t) => {
    // AUTH goes in the client's handshake: while Redis is busy it times out, and the client drops
    // the connection. That is a slow Redis, not an absent one: connect again, until connectTimeout.
    const busy = inspect(t, server.url)
    await busy.ping()
    const sleeping = busy.call('DEBUG', 'SLEEP', '1')
    const a = make(t, server.url, { connectTimeout: 10_000 })
    t.ok(a.budget.take(Date.now()) > 0, 'while it connects, requests wait')
    await waitFor(() => shared(a), 'shared once Redis answers', 10_000)
    t.same(a.stderr, [], 'never taken for down')
    await sleeping
  })

  t.test('a permit given back unspent is granted again without asking Redis', async (t) => {
    await redis.del(bucketKey(API_KEY, BASE))
    const a = make(t, server.url, { rate: 0.01, burst: 2 })
    await waitFor(() => a.budget.take(Date.now()) === 0, 'a permit')
    while (a.budget.take(Date.now()) === 0);
    a.budget.giveBack()
    t.equal(a.budget.take(Date.now()), 0, 'the permit given back')
  })

  t.test('close never waits on Redis, connected or not, and twice is once', async (t) => {
    const a = make(t, server.url)
    await waitFor(() => shared(a), 'connected')
    a.budget.take(Date.now())
    const start = Date.now()
    await a.budget.close()
    await a.budget.close()
    t.ok(Date.now() - start < 200, 'at once')
    const b = make(t, `redis://127.0.0.1:${server.port}`)
    await b.budget.close()
    t.same(b.stderr, [], 'no fallback line for a budget closed while connecting')
  })
})

t.test('nothing listening: local pacing after the timeout', async (t) => {
  const port = 1 + Math.floor(Math.random() * 1000)
  const a = make(t, `rediss://user:${PASSWORD}@127.0.0.1:${port}`, { timeout: 100 })
  await waitFor(() => local(a) && a.stderr.length === 1, 'the fallback')
  t.match(a.stderr[0], /Redis \(rediss:\/\/127\.0\.0\.1:\d+\) is unreachable/)
  t.notMatch(a.stderr[0], 'redis_pw')
  t.notMatch(a.stderr[0], 'user')
  while (a.budget.take(Date.now()) === 0);
  a.budget.giveBack()
  t.equal(a.budget.take(Date.now()), 0, 'pacing locally, a permit given back goes to the local pacer')
})
