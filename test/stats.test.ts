import t from 'tap'
import { DROP_REASONS, createStats, summaryLine, totalDropped } from '../lib/stats'

t.test('createStats starts every counter at zero', async (t) => {
  const stats = createStats()
  t.same(stats, {
    received: 0,
    skipped: 0,
    malformed: 0,
    delivered: 0,
    entries: 0,
    completions: 0,
    rows: 0,
    requests: 0,
    retries: 0,
    possibleDuplicates: 0,
    rateLimited: 0,
    unknown: 0,
    completionsFailed: 0,
    failedCompletions: [],
    waitingTokens: 0,
    oldestWaitingMs: 0,
    spooled: 0,
    replayed: 0,
    unspooled: 0,
    leftInSpool: 0,
    dropped: {
      overflow: 0,
      rateLimited: 0,
      auth: 0,
      deadToken: 0,
      rejected: 0,
      retriesExhausted: 0,
      ambiguous: 0,
      completed: 0,
      shutdown: 0,
      disabled: 0,
      tokenTooLong: 0,
      unformattable: 0,
      lineTooLong: 0,
      omitted: 0,
      expired: 0
    }
  })
  t.same(Object.keys(stats.dropped), [...DROP_REASONS], 'one counter per reason, in order')
})

t.test('each call gives independent counters', async (t) => {
  const a = createStats()
  const b = createStats()
  a.dropped.overflow = 3
  a.received = 1
  t.equal(b.dropped.overflow, 0)
  t.equal(b.received, 0)
})

t.test('totalDropped sums every reason', async (t) => {
  const stats = createStats()
  t.equal(totalDropped(stats), 0)
  DROP_REASONS.forEach((reason, i) => { stats.dropped[reason] = i + 1 })
  t.equal(totalDropped(stats), 120, '1 + 2 + … + 15')
})

t.test('summaryLine is empty when nothing went wrong', async (t) => {
  const stats = createStats()
  stats.received = 10
  stats.delivered = 10
  stats.entries = 2
  stats.requests = 2
  t.equal(summaryLine(stats), '')
})

t.test('summaryLine lists the reasons that dropped lines', async (t) => {
  const stats = createStats()
  stats.delivered = 7
  stats.entries = 3
  stats.dropped.overflow = 2
  stats.dropped.deadToken = 1
  stats.retries = 4
  stats.possibleDuplicates = 1
  stats.rateLimited = 5
  t.equal(summaryLine(stats),
    'delivered 7 lines in 3 entries; dropped 3 lines (overflow 2, deadToken 1); 4 retries, 1 possibly duplicated; 5 rate-limit answers')
})

t.test('summaryLine after retries alone has no reason list', async (t) => {
  const stats = createStats()
  stats.delivered = 1
  stats.entries = 1
  stats.retries = 2
  t.equal(summaryLine(stats),
    'delivered 1 line in 1 entry; dropped 0 lines; 2 retries, 0 possibly duplicated; 0 rate-limit answers')
})

t.test('summaryLine after rate limits alone', async (t) => {
  const stats = createStats()
  stats.rateLimited = 1
  t.equal(summaryLine(stats),
    'delivered 0 lines in 0 entries; dropped 0 lines; 0 retries, 0 possibly duplicated; 1 rate-limit answer')
})

t.test('summaryLine counts in words: one line, one entry, one retry', async (t) => {
  const stats = createStats()
  stats.delivered = 1
  stats.entries = 1
  stats.retries = 1
  stats.dropped.shutdown = 1
  t.equal(summaryLine(stats),
    'delivered 1 line in 1 entry; dropped 1 line (shutdown 1); 1 retry, 0 possibly duplicated; 0 rate-limit answers')
})

t.test('summaryLine after drops alone', async (t) => {
  const stats = createStats()
  stats.dropped.shutdown = 4
  t.match(summaryLine(stats), /; dropped 4 lines \(shutdown 4\);/)
})

t.test('summaryLine names lines of unknown outcome apart from drops', async (t) => {
  const stats = createStats()
  stats.unknown = 200
  t.equal(summaryLine(stats), 'delivered 0 lines in 0 entries; dropped 0 lines; outcome unknown for 200 lines (in flight at closeTimeout: they may have arrived); 0 retries, 0 possibly duplicated; 0 rate-limit answers')
})

t.test('summaryLine counts the completions to finish by hand', async (t) => {
  const stats = createStats()
  stats.completionsFailed = 5000
  stats.dropped.auth = 5000
  t.match(summaryLine(stats), /; 5000 completions not done: complete by hand \(their tokens are in the bitrix24:stats and bitrix24:completionFailed events\)$/)
  stats.completionsFailed = 1
  t.match(summaryLine(stats), /; 1 completion not done/)
})
