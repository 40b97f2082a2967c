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

t.test('seal: a batch of half a buffer or more goes into one, as UTF-8; a byte count that does not match the text keeps it a string', async (t) => {
  const pool = new ChunkPool(16, 2)
  const small = pool.seal(['ab', 'cd'], 5, 1)
  t.same([small.text, small.chunk], ['ab\ncd', undefined], 'under half a buffer: one string')
  const big = pool.seal(['héllo', 'wörld'], 13, 2)
  t.equal(big.text, undefined)
  t.equal(pool.text(big), 'héllo\nwörld', 'read back from its buffer')
  // The buffer is reused: a wrong count would read another batch's stale bytes.
  const wrong = pool.seal(['abcd', 'efgh'], 12, 3)
  t.same([wrong.text, wrong.chunk], ['abcd\nefgh', undefined], 'kept as the string, never read past what was written')
  t.equal(pool.text(wrong), 'abcd\nefgh')
})
