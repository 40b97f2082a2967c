import t from 'tap'
import { MemoryBudget } from '../lib/memory-budget'
import { TokenQueue } from '../lib/token-queue'

t.test('tokens with pending lines, oldest run first; a token taken from moves behind', async (t) => {
  const m = new MemoryBudget(100)
  t.equal(m.oldest(), undefined)
  t.equal(m.oldestSince(-1), -1, 'none pending')
  const a = new TokenQueue('a')
  const b = new TokenQueue('b')
  a.push('x', 1, 10)
  a.push('y', 1, 30)
  m.pending(a)
  b.push('z', 1, 20)
  m.pending(b)
  m.pending(a)
  t.equal(m.oldest(), a, 'pending() again keeps its place')
  t.equal(m.oldestSince(-1), 10)
  a.take(1)
  m.taken(a)
  t.equal(m.oldest(), b, 'after a take, behind the others')
  b.take(10)
  m.taken(b)
  t.equal(m.oldest(), a, 'emptied: out')
  m.bytes = 101
  t.ok(m.over)
  m.bytes = 100
  t.notOk(m.over)
})
