import t from 'tap'
import { Drops } from '../lib/drops'
import { replay } from '../lib/replay'
import type { Recovered } from '../lib/spool-read'
import { harness } from './fixtures/harness'

const A = 'wf.aaaaaaaaaaaa.token-a'
const B = 'wf.bbbbbbbbbbbb.token-b'
const C = 'wf.cccccccccccc.token-c'

const recovered: Recovered = {
  tokens: [
    { token: A, lines: ['a1', 'a2'], completion: { text: 'a done', returnValues: { result: 'ok' } }, possiblyLanded: true, state: undefined },
    { token: B, lines: ['b1'], completion: undefined, possiblyLanded: false, state: { rows: 3 } },
    { token: C, lines: [], completion: undefined, possiblyLanded: false, state: { rows: 1 } }
  ],
  lines: 3,
  completions: 1,
  expired: [{ token: C, lines: 2, completion: true }, { token: B, lines: 1, completion: false }],
  files: 2
}

t.test('what a spool held goes first, per token in order, completions last; figures on stderr, in stats and an event', async (t) => {
  const h = await harness(t)
  replay(recovered, h.delivery, new Drops(h.stats, h.reporter, (name, payload) => { h.events.push({ name, payload }) }, 1 << 20), h.stats, h.reporter, (name, payload) => { h.events.push({ name, payload }) })
  h.delivery.add(B, 'b2 (new)')
  await h.delivery.flush()
  // The completion carries the token's pending lines in its message (one request, one row): in order, itself last.
  t.same(h.sim.entries(A), ['a1\na2\na done'])
  t.same(h.sim.event(A)?.returnValues, { result: 'ok' })
  t.same(h.sim.entries(B), ['b1\nb2 (new)'], 'before the token\'s new lines')
  t.equal(h.stats.replayed, 4)
  t.equal(h.stats.possibleDuplicates, 1, 'A\'s entry was in flight when its process ended')
  t.equal(h.stats.dropped.expired, 4)
  t.match(h.stderr, [/replaying from 2 spools of ended processes: 3 lines and 1 completion of 2 workflows; 1 possibly duplicated \(in flight at the end\); 4 older than spoolMaxAge dropped/])
  t.match(h.stderr.join(''), /could not be completed \(expired\); complete it by hand/)
  t.same(h.events.find((e) => e.name === 'bitrix24:replayed')?.payload, { lines: 3, completions: 1, tokens: 2, possibleDuplicates: 1, expired: 4, spools: 2 })
  t.match(h.events.find((e) => e.name === 'bitrix24:completionFailed')?.payload, { token: C, reason: 'expired' })
})

t.test('without a spool, or nothing recovered, replay does nothing', async (t) => {
  const h = await harness(t)
  replay(undefined, h.delivery, new Drops(h.stats, h.reporter, () => {}, 1 << 20), h.stats, h.reporter, () => {})
  t.same(h.stderr, [])
  t.equal(h.stats.replayed, 0)
})

t.test('a spool that held only the rows workflows used (a clean shutdown leaves those): restored, and no stderr line', async (t) => {
  const h = await harness(t)
  const events: string[] = []
  const rowsOnly: Recovered = { tokens: [{ token: C, lines: [], completion: undefined, possiblyLanded: false, state: { rows: 39 } }], lines: 0, completions: 0, expired: [], files: 1 }
  replay(rowsOnly, h.delivery, new Drops(h.stats, h.reporter, () => {}, 1 << 20), h.stats, h.reporter, (name) => { events.push(name) })
  t.same(h.stderr, [], 'nothing to say at every start')
  t.same(events, ['bitrix24:replayed'], 'the event still comes')
  h.delivery.add(C, 'one more')
  await h.delivery.flush()
  t.same(h.sim.entries(C), ['one more'], 'the workflow goes on')
})
