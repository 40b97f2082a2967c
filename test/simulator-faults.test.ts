import t from 'tap'
import { Faults } from '../lib/simulator-faults'

const PATHS: ReadonlySet<string> = new Set(['/v1/workflows/activity-log', '/v1/workflows/event'])

t.test('scripts serve the next matching request, in order, once', async (t) => {
  const faults = new Faults(undefined, PATHS)
  faults.add([{ code: 'A', token: 'wf.b' }, { code: 'B' }, { code: 'C', path: '/other' }])
  t.equal(faults.take('/v1/workflows/activity-log', 'wf.a')?.code, 'B', 'the first whose token matches')
  t.equal(faults.take('/v1/workflows/event', 'wf.a'), undefined)
  t.equal(faults.take('/v1/workflows/event', 'wf.b')?.code, 'A')
  t.equal(faults.take('/v1/workflows/activity-log', undefined), undefined, 'a script with a path matches that path only')
  t.equal(faults.take('/other', undefined)?.code, 'C', 'and any path it names')
  faults.add([{ code: 'D' }])
  faults.reset()
  t.equal(faults.take('/v1/workflows/event', 'wf.a'), undefined, 'reset forgets scripts')
})

t.test('random faults: none without rates; a seeded sequence that reset() replays', async (t) => {
  t.equal(new Faults(undefined, PATHS).draw(), undefined)
  const faults = new Faults({ status502Rate: 0.2, dropBeforeRate: 0.2, dropAfterRate: 0.2, seed: 7 }, PATHS)
  const draws = Array.from({ length: 200 }, () => faults.draw())
  for (const kind of ['bad-gateway', 'drop-before', 'drop-after', undefined]) {
    const n = draws.filter((d) => d === kind).length
    t.ok(n > 20 && n < 130, `${String(kind)}: ${n} of 200`)
  }
  faults.reset()
  t.same(Array.from({ length: 200 }, () => faults.draw()), draws, 'the same sequence after reset')
  const other = new Faults({ status502Rate: 0.2, dropBeforeRate: 0.2, dropAfterRate: 0.2, seed: 8 }, PATHS)
  t.not(Array.from({ length: 200 }, () => other.draw()).join(), draws.join(), 'another seed, another sequence')
  const always = new Faults({ status502Rate: 1 }, PATHS)
  t.equal(always.draw(), 'bad-gateway')
})
