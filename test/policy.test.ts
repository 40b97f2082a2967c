import t from 'tap'
import { classify, type Outcome } from '../lib/classify'
import { decide, outlasts, type PolicyContext, RATE_LIMIT_BASE } from '../lib/policy'

const NOW = 1_000_000
const ctx: PolicyContext = {
  now: NOW,
  attempts: 0,
  rateLimitStreak: 0,
  pausedUntil: 0,
  deadline: Infinity,
  maxRetries: 5,
  maxRetryDelay: 30_000,
  retryAmbiguous: true,
  onRateLimit: 'buffer',
  random: () => 0.5
}

function answer (status: number, code?: string, retryAfter?: string): Outcome {
  return { status, body: JSON.stringify(code === undefined ? { success: true } : { success: false, error: { code } }), retryAfter }
}

const v = (o: Outcome) => classify(o, NOW)

t.test('every action maps to one decision', async (t) => {
  t.same(decide(v(answer(200)), ctx), { kind: 'delivered' })
  t.same(decide(v(answer(401, 'INVALID_API_KEY')), ctx), { kind: 'keyFailure' })
  t.same(decide(v(answer(403, 'BITRIX_ACCESS_DENIED')), ctx), { kind: 'tokenFailure' })
  t.same(decide(v(answer(422, 'BITRIX_ERROR')), ctx), { kind: 'drop', reason: 'rejected', wholeToken: false, slowDown: false })
})

t.test('a rate limit pauses as long as the server says, never less than the floor', async (t) => {
  t.same(decide(v(answer(429, 'RATE_LIMITED', '5')), ctx), { kind: 'pause', until: NOW + 5000, delay: 5000, slowDown: true, then: 'wait' })
  const zero = decide(v(answer(429, 'RATE_LIMITED', '0')), ctx)
  t.match(zero, { kind: 'pause', delay: RATE_LIMIT_BASE }, 'Retry-After: 0 is not "at once"')
  const streak = decide(v(answer(429, 'RATE_LIMITED', '0')), { ...ctx, rateLimitStreak: 5 })
  t.match(streak, { kind: 'pause', delay: 15_000 }, 'and backs off as the limits go on')
  t.match(decide(v(answer(429, 'RATE_LIMITED')), { ...ctx, pausedUntil: NOW + 1 }), { slowDown: false }, 'one slow-down per pause')
  t.match(decide(v(answer(429, 'RATE_LIMITED')), { ...ctx, onRateLimit: 'drop' }), { then: 'drop' })
})

t.test('closing gives up at once on a pause that outlasts the close deadline', async (t) => {
  t.match(decide(v(answer(429, 'RATE_LIMITED', '5')), { ...ctx, deadline: NOW + 4000 }), { kind: 'pause', then: 'giveUp' })
  t.match(decide(v(answer(429, 'RATE_LIMITED', '5')), { ...ctx, deadline: NOW + 6000 }), { kind: 'pause', then: 'wait' })
  t.match(decide(v(answer(429, 'RATE_LIMITED', '1')), { ...ctx, deadline: NOW + 6000, pausedUntil: NOW + 7000 }), { then: 'giveUp' }, 'the pause already in force counts')
  t.match(decide(v(answer(429, 'RATE_LIMITED', '5')), { ...ctx, deadline: NOW + 4000, onRateLimit: 'drop' }), { then: 'drop' }, 'drop mode drops what is queued either way')
  t.equal(outlasts(NOW + 1, NOW), true)
  t.equal(outlasts(NOW, NOW), false)
})

t.test('faults retry with backoff, up to maxRetries, never past the close deadline', async (t) => {
  t.same(decide(v(answer(500, 'INTERNAL_ERROR')), ctx), { kind: 'retry', delay: 250, slowDown: false, possibleDuplicate: false })
  t.match(decide(v(answer(502, 'BITRIX_UNAVAILABLE')), ctx), { kind: 'retry', slowDown: true }, 'a 502 may be the portal\'s own limit')
  t.same(decide(v(answer(500, 'INTERNAL_ERROR')), { ...ctx, attempts: 5 }), { kind: 'drop', reason: 'retriesExhausted', wholeToken: false, slowDown: false })
  t.same(decide(v(answer(500, 'INTERNAL_ERROR')), { ...ctx, deadline: NOW + 100 }), { kind: 'drop', reason: 'shutdown', wholeToken: true, slowDown: false })
  const sent: Outcome = { error: { code: 'ECONNRESET' }, sent: true }
  t.match(decide(v(sent), ctx), { kind: 'retry', possibleDuplicate: true })
  t.same(decide(v(sent), { ...ctx, retryAmbiguous: false }), { kind: 'drop', reason: 'ambiguous', wholeToken: false, slowDown: false })
})
