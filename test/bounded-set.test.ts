import t from 'tap'
import { BoundedSet } from '../lib/bounded-set'

t.test('forgets the oldest member past its size; re-adding refreshes a member', async (t) => {
  const set = new BoundedSet(2)
  set.add('a')
  set.add('b')
  set.add('a')
  set.add('c')
  t.equal(set.size, 2)
  t.ok(set.has('a'), 'refreshed, so kept')
  t.notOk(set.has('b'), 'the oldest went')
  t.ok(set.has('c'))
})
