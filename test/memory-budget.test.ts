import t from 'tap'
import { MemoryBudget } from '../lib/memory-budget'
import { TokenQueue } from '../lib/token-queue'

t.test('tokens with pending lines, oldest run first; a token taken from moves behind', async (t) => {
  const m = new MemoryBudget(100)
  t.equal(m.oldest(), undefined)
  t.equal(m.oldestSince(-1), -1, 'none pending')
  const a = new TokenQueue('a', 1)
  const b = new TokenQueue('b', 1)
  a.push('x', 1, 10)
  a.push('y', 1, 30)
  m.pending(a)
  b.push('z', 1, 20)
  m.pending(b)
  m.pending(a)
  t.equal(m.oldest(), a, 'pending() again keeps its place')
  t.equal(m.oldestSince(-1), 10)
  a.take()
  m.taken(a)
  t.equal(m.oldest(), b, 'after a take, behind the others')
  b.take()
  m.taken(b)
  t.equal(m.oldest(), a, 'emptied: out')
  m.bytes = 101
  t.ok(m.over)
  m.bytes = 100
  t.notOk(m.over)
})

t.test('evict drops the oldest pending lines, an entry\'s worth at a time, until under the cap, and says whose', async (t) => {
  const m = new MemoryBudget(10)
  // The queues count their own bytes in the budget: each line with its newline.
  const a = new TokenQueue('a', 2, undefined, m)
  const b = new TokenQueue('b', 2, undefined, m)
  for (const [q, text] of [[a, 'a1'], [a, 'a2'], [b, 'b1'], [a, 'a3']] as const) {
    q.push(text, 2, 0)
    m.pending(q)
  }
  t.equal(m.bytes, 12)
  m.bytes += 3 // something that is not a pending line: an entry in flight
  const seen: Array<[string, number]> = []
  m.evict((q, lines) => seen.push([q.token, lines]))
  t.same(seen, [['a', 2]], 'two of a\'s lines were enough')
  t.equal(m.bytes, 9)
  t.equal(m.oldest(), a, 'a still has a line: still the oldest')
  m.bytes += 10
  m.evict((q, lines) => seen.push([q.token, lines]))
  t.same(seen.slice(1), [['a', 1], ['b', 1]])
  t.equal(m.bytes, 13, 'only what is not a pending line is left, over the cap')
  t.equal(m.oldest(), undefined)
})

t.test('with slack, eviction frees a batch: a flood evicts (and reports) once per batch, not per line', async (t) => {
  const m = new MemoryBudget(100, 30)
  const a = new TokenQueue('a', 9, undefined, m)
  m.pending(a)
  const calls: number[] = []
  for (let i = 0; i < 100; i++) {
    a.push('123456789', 9, i)
    if (m.over) m.evict((_q, lines) => calls.push(lines))
  }
  t.ok(m.bytes <= 100)
  t.same(calls, Array(calls.length).fill(4), 'four lines at a time: down to 70 bytes')
  t.equal(calls.length, 23, '92 lines evicted in 23 batches')
})
