import t from 'tap'
import { Pacer } from '../lib/pacer'

t.test('rate 0 turns pacing off', async (t) => {
  const p = new Pacer(0, 1, 0)
  for (let i = 0; i < 100; i++) t.equal(p.take(0), 0, `take ${i}`)
  p.slowDown(0)
  t.equal(p.take(0), 0, 'still free after slowDown')
  p.speedUp()
  t.equal(p.take(0), 0, 'and after speedUp')
})

t.test('a burst goes at once, then the rate applies', async (t) => {
  const p = new Pacer(2, 5, 1000)
  for (let i = 0; i < 5; i++) t.equal(p.take(1000), 0, `burst slot ${i + 1}`)
  t.equal(p.take(1000), 500, 'the 6th waits 1/rate')
  t.equal(p.take(1200), 300, 'a partial refill shortens the wait')
  t.equal(p.take(1500), 0, 'a slot is free after 1/rate')
  t.equal(p.take(1500), 500, 'and it was spent')
})

t.test('idle time refills up to the burst, no further', async (t) => {
  const p = new Pacer(2, 3, 0)
  for (let i = 0; i < 3; i++) p.take(0)
  t.equal(p.take(0), 500)
  // an hour of idling buys only `burst` slots
  for (let i = 0; i < 3; i++) t.equal(p.take(3_600_000), 0, `slot ${i + 1} after idling`)
  t.equal(p.take(3_600_000), 500, 'burst spent')
})

t.test('a fractional rate rounds the wait up', async (t) => {
  const p = new Pacer(3, 1, 0)
  t.equal(p.take(0), 0)
  t.equal(p.take(0), 334, '1000/3 rounded up')
})

t.test('slowDown halves the rate and spends the burst', async (t) => {
  const p = new Pacer(2, 5, 0)
  t.equal(p.take(0), 0)
  p.slowDown(0)
  t.equal(p.take(0), 1000, 'halved, and the burst left is gone: wait 1/rate')
  t.equal(p.take(1000), 0, 'refills at the lower rate')
})

t.test('slowDown never goes below a sixteenth of the rate', async (t) => {
  const p = new Pacer(16, 5, 0)
  // Each slow-down spends the burst: the wait that follows is 1/rate.
  const waits: number[] = []
  for (let i = 0; i < 10; i++) {
    p.slowDown(0)
    waits.push(p.take(0))
  }
  t.same(waits, [8, 4, 2, 1, 1, 1, 1, 1, 1, 1].map((rate) => 1000 / rate))
})

t.test('speedUp adds a tenth of the configured rate, never above it', async (t) => {
  const p = new Pacer(10, 5, 0)
  p.slowDown(0)
  p.slowDown(0)
  t.equal(p.take(0), 400, 'at 2.5/s')
  // No time passes, so no slot is there: each wait is 1/rate at the rate reached.
  const waits: number[] = []
  for (let i = 0; i < 10; i++) {
    p.speedUp()
    waits.push(p.take(0))
  }
  t.same(waits, [3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10, 10, 10].map((rate) => Math.ceil(1000 / rate)))
})

t.test('speedUp at full rate stays there', async (t) => {
  const p = new Pacer(2, 5, 0)
  p.speedUp()
  for (let i = 0; i < 5; i++) p.take(0)
  t.equal(p.take(0), 500, 'still 2/s')
})

t.test('slowDown refills first, so time already waited counts at the old rate', async (t) => {
  const p = new Pacer(4, 1, 0)
  t.equal(p.take(0), 0)
  t.equal(p.take(0), 250)
  // 125 ms at 4/s = half a slot; then the rate halves and the burst is spent
  p.slowDown(125)
  t.equal(p.take(125), 500, 'tokens were set to 0, a full slot at the new rate')
})

t.test('limit: the server\'s window caps the rate until it resets; pacing off ignores it', async (t) => {
  const p = new Pacer(2, 1, 0)
  t.equal(p.take(0), 0)
  p.limit(0.5, 10_000, 0)
  t.equal(p.take(0), 2000, 'half a request a second until the reset')
  t.equal(p.take(10_000), 0, 'slots refilled at the capped rate')
  t.equal(p.take(10_000), 500, 'after the reset: the configured rate again')
  p.limit(100, 20_000, 10_000)
  t.equal(p.take(10_000), 500, 'a ceiling above the rate changes nothing')
  p.limit(0, 30_000, 10_000)
  t.equal(p.take(10_000), 8000, 'never below a sixteenth of the rate')
  const off = new Pacer(0, 1, 0)
  off.limit(0.1, 10_000, 0)
  t.equal(off.take(0), 0)
  t.equal(off.take(0), 0)
})

t.test('giveBack: a slot taken and not spent is there again, never above the burst; pacing off ignores it', async (t) => {
  const p = new Pacer(1, 2, 0)
  t.equal(p.take(0), 0)
  t.equal(p.take(0), 0)
  t.equal(p.take(0), 1000, 'the burst is spent')
  p.giveBack()
  t.equal(p.take(0), 0, 'the slot given back')
  p.giveBack()
  p.giveBack()
  p.giveBack()
  t.equal(p.take(0), 0)
  t.equal(p.take(0), 0)
  t.equal(p.take(0), 1000, 'no more than the burst')
  const off = new Pacer(0, 2, 0)
  off.giveBack()
  t.equal(off.take(0), 0)
})
