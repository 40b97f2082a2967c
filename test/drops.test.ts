import t from 'tap'
import { Drops, NAMED_COMPLETIONS } from '../lib/drops'
import type { EventName, EventPayloads } from '../lib/events'
import { Reporter } from '../lib/reporter'
import { createStats, MAX_LISTED_COMPLETIONS } from '../lib/stats'

function setup () {
  const stats = createStats()
  const stderr: string[] = []
  const events: Array<{ name: EventName, payload: EventPayloads[EventName] }> = []
  const drops = new Drops(stats, new Reporter((s) => { stderr.push(s) }, { now: () => 0, setTimeout: () => 0, clearTimeout: () => {}, unref: () => {} }), (name, payload) => { events.push({ name, payload }) }, 1024)
  return { stats, stderr, events, drops }
}

const TOKEN = 'wf.0123456789abcdef.full-token'

t.test('each reason is counted, sent with the full token, and explained once', async (t) => {
  const { stats, stderr, events, drops } = setup()
  drops.lines('overflow', 3, TOKEN)
  drops.lines('overflow', 2, TOKEN)
  drops.lines('completed', 1, TOKEN)
  drops.lines('rejected', 1, TOKEN, 'BITRIX_ERROR')
  drops.lines('shutdown', 0, TOKEN)
  t.equal(stats.dropped.overflow, 5)
  t.equal(stats.dropped.completed, 1)
  t.equal(stats.dropped.rejected, 1)
  t.equal(stderr.length, 2, 'one line per reason that has a message; none for causes reported where they happen')
  t.match(stderr[0], /maxBufferedBytes \(1024\)/)
  t.notMatch(stderr.join(''), /wf\.0123/, 'stderr names no token for a drop')
  t.same(events.map((e) => e.payload), [
    { reason: 'overflow', lines: 3, token: TOKEN, code: undefined },
    { reason: 'overflow', lines: 2, token: TOKEN, code: undefined },
    { reason: 'completed', lines: 1, token: TOKEN, code: undefined },
    { reason: 'rejected', lines: 1, token: TOKEN, code: 'BITRIX_ERROR' }
  ])
})

t.test('a failed completion is named per token; an unknown outcome says so', async (t) => {
  const { stderr, events, drops } = setup()
  drops.completionFailed(TOKEN, 'deadToken', 'BITRIX_ACCESS_DENIED')
  drops.completionFailed('wf.other.token.xyz', 'shutdown', undefined, true)
  t.match(stderr[0], /event token wf\.012…oken could not be completed \(deadToken BITRIX_ACCESS_DENIED\); complete it by hand/)
  t.match(stderr[1], /may or may not be completed: its request was in flight when closeTimeout ran out; check the workflow/)
  t.same(events.map((e) => e.payload), [
    { token: TOKEN, reason: 'deadToken', code: 'BITRIX_ACCESS_DENIED', outcome: 'failed' },
    { token: 'wf.other.token.xyz', reason: 'shutdown', code: undefined, outcome: 'unknown' }
  ])
})

t.test('failed completions: the first few named within the stderr budget, the rest counted and listed in the stats', async (t) => {
  const { stderr, events, drops, stats } = setup()
  for (let i = 0; i < MAX_LISTED_COMPLETIONS + 10; i++) drops.completionFailed(`wf.many.${i}`, 'auth', 'INVALID_API_KEY', i === 1)
  t.equal(stderr.length, NAMED_COMPLETIONS + 1, 'the first three, then one line for the rest')
  t.match(stderr[1], /event token w\S*1 may or may not be completed/)
  t.match(stderr[3], /more activities could not be completed: they are counted in the closing summary; their tokens are in the bitrix24:stats event \(failedCompletions\)/)
  t.equal(stats.completionsFailed, MAX_LISTED_COMPLETIONS + 10, 'every one counted')
  t.equal(stats.failedCompletions.length, MAX_LISTED_COMPLETIONS, 'listed up to a bound')
  t.same(stats.failedCompletions.slice(0, 2), [{ token: 'wf.many.0', outcome: 'failed' }, { token: 'wf.many.1', outcome: 'unknown' }])
  t.equal(events.length, MAX_LISTED_COMPLETIONS + 10, 'and each one has its event')
})
