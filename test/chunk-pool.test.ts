import t from 'tap'
import { ChunkPool } from '../lib/chunk-pool'

t.test('a buffer given back is handed out again; at most `keep` wait', async (t) => {
  const pool = new ChunkPool(64, 1)
  const a = pool.get()
  const b = pool.get()
  t.equal(a.length, 64)
  t.not(a, b, 'none waiting: a new one')
  pool.put(a)
  pool.put(b)
  t.equal(pool.get(), a, 'the one kept')
  const c = pool.get()
  t.not(c, a)
  t.not(c, b, 'the second was let go')
})
