import { createHash } from 'node:crypto'
import t from 'tap'
import { bucketKey, cleanRedisMessage, DEFAULT_PREFIX, parseReply, RedisBucket, redisTarget, type SyncRequest } from '../lib/redis-bucket'
import { Pacer, RATE_FLOOR_DIVISOR, RATE_STEP_DIVISOR } from '../lib/pacer'
import { API_KEY } from './fixtures/harness'
import { inspect, needsRedis, startRedis } from './fixtures/redis'
import { waitFor } from './fixtures/harness'

const BASE = 'http://127.0.0.1:9'
const ASK: SyncRequest = { want: 1, ups: 0, slow: false, pauseMs: 0, back: 0 }

t.test('the bucket key is a hash of key and base URL, never the key itself', async (t) => {
  const key = bucketKey(API_KEY, BASE)
  t.equal(key, DEFAULT_PREFIX + createHash('sha256').update(API_KEY + '\n' + BASE).digest('hex'))
  t.notMatch(key, API_KEY)
  t.not(bucketKey(API_KEY, 'https://other.example'), key, 'another portal, another bucket')
  t.not(bucketKey('vibe_api_other', BASE), key, 'another key, another bucket')
  t.match(bucketKey(API_KEY, BASE, 'app:'), /^app:[0-9a-f]{64}$/)
})

t.test('messages about Redis never carry its password', async (t) => {
  const url = 'redis://user:s3cr%2Fet@cache.internal:6380/2'
  t.equal(redisTarget(url), 'redis://cache.internal:6380')
  t.equal(redisTarget('not a url'), 'redis')
  const cleaned = cleanRedisMessage(`failed ${url}: WRONGPASS for s3cr/et and s3cr%2Fet and user\u0000x`, url)
  t.notMatch(cleaned, 's3cr')
  t.notMatch(cleaned, 'user')
  t.notMatch(cleaned, '\u0000')
  t.equal(cleanRedisMessage('at rediss://a:b@host', 'nonsense'), 'at rediss://…@host', 'credentials of any URL')
  t.equal(cleanRedisMessage('x'.repeat(300), url).length, 201, 'cut short')
  t.equal(cleanRedisMessage('plain', 'redis://host'), 'plain')
})

t.test('the script\'s answer is checked and bounded', async (t) => {
  t.same(parseReply([2, 0, 0, 2000], 2), { granted: 2, wait: 0, pauseLeft: 0, rate: 2 })
  t.same(parseReply(['9', 1e12, 1e12, 500], 1), { granted: 1, wait: 3_600_000, pauseLeft: 3_600_000, rate: 0.5 })
  for (const bad of [null, 'OK', [1, 2, 3], [1, 2, 3, -1], [1, 2, 3, 'x']]) {
    t.throws(() => parseReply(bad, 1), /four numbers/)
  }
})

t.test('against a real Redis', needsRedis(), async (t) => {
  const server = await startRedis(t)
  const key = bucketKey(API_KEY, BASE)
  const open = async (rate: number, burst: number) => {
    let ready = false
    const errors: string[] = []
    const bucket = new RedisBucket(server.url, key, rate, burst, { timeout: 1000, onReady: () => { ready = true }, onError: (m) => errors.push(m) })
    t.teardown(() => bucket.close())
    await waitFor(() => ready, 'the connection')
    t.ok(bucket.ready, 'connected')
    return bucket
  }
  const redis = inspect(t, server.url)

  t.test('two connections take from one bucket atomically: never more than the burst at once', async (t) => {
    await redis.del(key)
    const [a, b] = [await open(1, 5), await open(1, 5)]
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).sync({ ...ASK, want: 2 })))
    const granted = replies.reduce((n, r) => n + r.granted, 0)
    // One more token may have dripped in while the calls ran.
    t.ok(granted >= 5 && granted <= 6, `granted ${granted}`)
    const empty = replies.find((r) => r.granted === 0)
    t.ok(empty !== undefined && empty.wait > 0 && empty.wait <= 1000, 'an empty bucket says when the next token comes')
    t.equal(await redis.exists(key), 1)
    const ttl = await redis.pttl(key)
    t.ok(ttl > 0 && ttl <= 60_000, 'a forgotten bucket expires')
    t.same((await redis.keys('*')).filter((k) => k.includes(API_KEY)), [], 'the API key is nowhere in Redis')
  })

  t.test('a pause holds for every caller; a slow-down halves the shared rate once per pause; successes restore it', async (t) => {
    await redis.del(key)
    const [a, b] = [await open(2, 5), await open(2, 5)]
    let r = await a.sync({ ...ASK, want: 0, ups: 0, slow: true, pauseMs: 800 })
    t.equal(r.rate, 1, 'halved')
    t.ok(r.pauseLeft > 700 && r.pauseLeft <= 800)
    r = await b.sync({ ...ASK, want: 1, ups: 0, slow: true, pauseMs: 0 })
    t.equal(r.granted, 0, 'the other caller waits too')
    t.ok(r.wait > 0 && r.wait <= 800)
    t.equal(r.rate, 1, 'a second 429 of the same pause does not halve again')
    r = await b.sync({ ...ASK, want: 0, ups: 3, slow: false, pauseMs: 0 })
    t.equal(r.rate, 1.6, 'three successes give back three tenths')
    r = await b.sync({ ...ASK, want: 0, ups: 100, slow: false, pauseMs: 0 })
    t.equal(r.rate, 2, 'never above the configured rate')
  })

  t.test('the shared bucket slows down and recovers like the local pacer: one declaration of the steps', async (t) => {
    await redis.del(key)
    const a = await open(16, 1)
    const local = new Pacer(16, 1, 0)
    t.equal(local.take(0), 0)
    let r = await a.sync({ ...ASK, want: 1 })
    for (let i = 0; i < 6; i++) {
      r = await a.sync({ ...ASK, want: 0, slow: true })
      local.slowDown(0)
    }
    t.equal(r.rate, 16 / RATE_FLOOR_DIVISOR, 'the floor')
    t.equal(local.take(0), Math.ceil(1000 / r.rate), 'the local pacer waits as long at its floor')
    r = await a.sync({ ...ASK, want: 0, ups: 2 })
    local.speedUp()
    local.speedUp()
    t.equal(r.rate, 16 / RATE_FLOOR_DIVISOR + 2 * 16 / RATE_STEP_DIVISOR, 'two steps back')
    t.equal(local.take(0), Math.ceil(1000 / r.rate), 'and so does the local pacer after two successes')
  })

  t.test('rate 0: no pacing, but pauses still hold', async (t) => {
    await redis.del(key)
    const a = await open(0, 5)
    t.equal((await a.sync({ ...ASK, want: 50 })).granted, 50)
    const r = await a.sync({ ...ASK, want: 1, ups: 0, slow: true, pauseMs: 500 })
    t.equal(r.granted, 0)
    t.ok(r.wait > 0)
  })

  t.test('permits given back return to the bucket, never above the burst', async (t) => {
    await redis.del(key)
    const a = await open(0.001, 5)
    t.equal((await a.sync({ ...ASK, want: 4 })).granted, 4)
    t.equal((await a.sync({ ...ASK, want: 4, back: 3 })).granted, 4, 'one left and three given back')
    t.equal((await a.sync({ ...ASK, want: 0, back: 50 })).granted, 0)
    t.equal(Math.floor(Number(await redis.hget(key, 'tokens'))), 5, 'capped at the burst')
  })

  t.test('stored state is not trusted: garbage, NaN, infinities and values out of range count as missing', async (t) => {
    const a = await open(2, 5)
    for (const [tokens, last, rate, pause] of [['-inf', 'inf', '0', 'nan'], ['nan', '-inf', '-5', '1e300'], ['x', 'y', 'inf', '-1'], ['1e9', '0', 'nan', '']]) {
      await redis.del(key)
      await redis.hset(key, 'tokens', tokens as string, 'last', last as string, 'rate', rate as string, 'pause', pause as string)
      const r = await a.sync({ ...ASK, want: 5 })
      t.ok(r.granted >= 0 && r.granted <= 5, `${tokens} ${last} ${rate} ${pause}: granted ${r.granted}`)
      t.equal(r.pauseLeft, 0, 'no pause')
      t.ok(r.rate >= 2 / 16 && r.rate <= 2, `rate ${r.rate}`)
      const state = await redis.hgetall(key)
      for (const field of ['tokens', 'last', 'rate', 'pause']) t.ok(Number.isFinite(Number(state[field])), `${field} stored as a number again: ${state[field]}`)
      const next = await a.sync({ ...ASK, want: 1 })
      t.ok(next.granted === 1 || (next.wait > 0 && next.wait <= 8000), `and the bucket works on: wait ${next.wait}`)
    }
  })

  t.test('a failing command rejects with a clean message', async (t) => {
    await redis.set(key, 'not a hash')
    const a = await open(2, 5)
    await t.rejects(a.sync(ASK), /WRONGTYPE/)
    await redis.del(key)
  })
})
