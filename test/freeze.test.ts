import t from 'tap'
import { deepFreeze } from '../lib/freeze'

t.test('freezes an object and everything it holds', async (t) => {
  const value = { a: { b: [1, { c: 2 }] }, d: 'text', e: null }
  t.equal(deepFreeze(value), value, 'the same object')
  t.ok(Object.isFrozen(value))
  t.ok(Object.isFrozen(value.a))
  t.ok(Object.isFrozen(value.a.b))
  t.ok(Object.isFrozen(value.a.b[1]))
  t.equal(deepFreeze(42), 42, 'a primitive as it is')
  t.equal(deepFreeze(null), null)
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  t.equal(deepFreeze(cycle), cycle, 'a cycle ends')
})
