import t from 'tap'
import { RateBuckets } from '../lib/simulator-rate'

t.test('a bucket per key: burst at once, refilled at rps, Retry-After in whole seconds', async (t) => {
  let now = 0
  const rate = new RateBuckets({ rps: 2, burst: 3 }, () => now)
  t.same([rate.consume('a'), rate.consume('a'), rate.consume('a')], [0, 0, 0], 'the burst')
  t.equal(rate.consume('a'), 1, 'over it: wait a second')
  t.equal(rate.consume('b'), 0, 'another key has its own bucket')
  now = 500
  t.equal(rate.consume('a'), 0, 'half a second at 2 rps refills one')
  t.equal(rate.consume('a'), 1)
  now = 100_000
  t.same([rate.consume('a'), rate.consume('a'), rate.consume('a'), rate.consume('a')], [0, 0, 0, 1], 'refilled up to the burst, no further')
  now = 50_000
  t.equal(rate.consume('a'), 1, 'a clock that goes back refills nothing')
  const slow = new RateBuckets({ rps: 0.25, burst: 1 }, () => now)
  slow.consume('k')
  t.equal(slow.consume('k'), 4, 'at 0.25 rps the next comes in 4 s')
})

t.test('set() changes the limit and refills; null lets everything pass; reset() refills', async (t) => {
  const rate = new RateBuckets(null, () => 0)
  for (let i = 0; i < 100; i++) t.equal(rate.consume('a'), 0)
  rate.set({ rps: 1, burst: 1 })
  t.equal(rate.consume('a'), 0)
  t.equal(rate.consume('a'), 1)
  rate.reset()
  t.equal(rate.consume('a'), 0, 'full again')
  rate.set({ rps: 1, burst: 1 })
  t.equal(rate.consume('a'), 0, 'a new limit starts full')
})
