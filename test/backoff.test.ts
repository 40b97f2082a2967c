import t from 'tap'
import { backoff } from '../lib/backoff'

t.test('a delay the server asked for is obeyed as given', async (t) => {
  t.equal(backoff(1, 500, 30000, 1234, () => 0), 1234, 'not jittered below it')
  t.equal(backoff(7, 500, 30000, 0, () => 0.5), 15000, 'a delay of 0 is no delay: backoff applies, or a server saying 0 would loop')
  t.equal(backoff(2, 500, 30000, -5, () => 0.5), 500, 'so does a date in the past')
})

t.test('a server delay is capped', async (t) => {
  t.equal(backoff(1, 500, 30000, 120000, () => 0.5), 30000)
})

t.test('exponential with full jitter', async (t) => {
  const top = () => 0.999999
  t.equal(backoff(1, 500, 30000, undefined, top), 499, 'attempt 1: below base')
  t.equal(backoff(2, 500, 30000, undefined, top), 999, 'attempt 2: below 2 * base')
  t.equal(backoff(3, 500, 30000, undefined, top), 1999, 'attempt 3: below 4 * base')
  t.equal(backoff(4, 500, 30000, undefined, () => 0.5), 2000, 'half of 8 * base')
  t.equal(backoff(3, 500, 30000, undefined, () => 0), 0, 'full jitter reaches zero')
})

t.test('the exponential ceiling is capped', async (t) => {
  t.equal(backoff(10, 500, 30000, undefined, () => 0.5), 15000, 'half the cap')
  t.equal(backoff(7, 500, 30000, undefined, () => 0.999999), 29999, 'never reaches the cap')
})

t.test('a huge attempt number does not overflow', async (t) => {
  const d = backoff(1e6, 500, 30000, undefined, () => 0.5)
  t.equal(d, 15000)
  t.ok(Number.isFinite(backoff(Number.MAX_SAFE_INTEGER, 1, 1e300, undefined, () => 0.5)), 'finite with a huge cap')
})

t.test('uses Math.random by default', async (t) => {
  const bad: number[] = []
  for (let i = 0; i < 1000; i++) {
    const d = backoff(3, 500, 30000, undefined)
    if (!Number.isInteger(d) || d < 0 || d >= 2000) bad.push(d)
  }
  t.same(bad, [], 'every delay is an integer in [0, 2000)')
})
