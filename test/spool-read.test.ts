import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { readSpools } from '../lib/spool-read'
import { loadStore, openStore } from '../lib/spool-store'
import { needsStore } from './fixtures/store'
import { untrackLibChildren } from './fixtures/untracked'

// Its spool-file probes (child processes of lib/spool-store.ts) run without tap's tracking.
untrackLibChildren()

// Reading what ended processes' spools left. Written and read through the
// spool itself: spool.test.ts; here, files made directly with the store.

t.test('a file read back: lines per token in order, skipping settled ones; the in-flight mark; a state alone; a damaged file moved aside', needsStore(), async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'b24-read-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'old.mdb')
  const store = openStore(loadStore(), path)
  await store.root.transaction(() => {
    store.lines.putSync(['wf.a', 1, 1], [1000, ['a1', 'a2', 'a3']])
    store.lines.putSync(['wf.a', 1, 4], [1000, ['done'], { ok: 1 }])
    store.tokens.putSync('wf.a', { e: 1, s: 2, d: [[1, 1]], x: { used: 3 } })
    store.tokens.putSync('wf.b', { x: { used: 5 } })
  })
  await store.root.close()
  const bad = join(dir, 'bad.mdb')
  writeFileSync(bad, 'no lmdb file'.repeat(1000))
  const warnings: string[] = []
  const { recovered, readable } = await readSpools(loadStore(), [path, bad], 60_000, 2000, (text) => { warnings.push(text) })
  t.same(readable, [path])
  t.same(recovered.tokens, [
    { token: 'wf.a', lines: ['a2', 'a3'], completion: { text: 'done', returnValues: { ok: 1 } }, possiblyLanded: true, state: { used: 3 } },
    { token: 'wf.b', lines: [], completion: undefined, possiblyLanded: false, state: { used: 5 } }
  ])
  t.match(recovered, { lines: 2, completions: 1, expired: [], files: 1 })
  t.match(warnings, [/^the spool file .*bad\.mdb could not be read \(.+\); it was moved aside as .*bad\.mdb\.corrupt and is not replayed$/])
})

t.test('a record that is not what the router takes makes its file unreadable: moved aside, nothing of it queued', needsStore(), async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'b24-read-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cases: Array<[string, (store: ReturnType<typeof openStore>) => void]> = [
    ['long-token', (s) => s.lines.putSync(['w'.repeat(513), 1, 1], [1000, ['a']])],
    ['empty-token', (s) => s.tokens.putSync('', { x: { used: 1 } })],
    ['text', (s) => s.lines.putSync(['wf.a', 1, 1], [1000, ['a', 42]])],
    ['texts', (s) => s.lines.putSync(['wf.a', 1, 1], [1000, 'a'])],
    ['time', (s) => s.lines.putSync(['wf.a', 1, 1], ['soon', ['a']])],
    ['return-values', (s) => s.lines.putSync(['wf.a', 1, 1], [1000, ['done'], ['not', 'an', 'object']])],
    ['key', (s) => s.lines.putSync('wf.a', [1000, ['a']])],
    ['value', (s) => s.lines.putSync(['wf.a', 1, 1], 'not a record')],
    ['null-return-values', (s) => s.lines.putSync(['wf.a', 1, 1], [1000, ['done'], null])]
  ]
  const paths: string[] = []
  for (const [name, write] of cases) {
    const path = join(dir, `${name}.mdb`)
    const store = openStore(loadStore(), path)
    await store.root.transaction(() => {
      store.lines.putSync(['wf.ok', 1, 1], [1000, ['fine']])
      write(store)
    })
    await store.root.close()
    paths.push(path)
  }
  const warnings: string[] = []
  const { recovered, readable } = await readSpools(loadStore(), paths, 60_000, 2000, (text) => { warnings.push(text) })
  t.same(readable, [])
  t.same(recovered, { tokens: [], lines: 0, completions: 0, expired: [], files: 0 })
  t.equal(warnings.length, cases.length)
  for (const w of warnings) t.match(w, /could not be read \(a malformed record\); it was moved aside as .*\.corrupt and is not replayed$/)
})
