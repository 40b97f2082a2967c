import t from 'tap'
import { RULES, cannotSucceed, classify, ERR_DEADLINE, ERR_PROXY_AUTH, ERR_PROXY_REFUSED, ERR_SERIALIZE, parseRateLimit, parseRetryAfter } from '../lib/classify'
import type { Action, Outcome } from '../lib/classify'

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0)

function answer (status: number, body: unknown, retryAfter?: string): Outcome {
  return { status, body: typeof body === 'string' ? body : JSON.stringify(body), retryAfter }
}

function failure (status: number, error: Record<string, unknown>, retryAfter?: string): Outcome {
  return answer(status, { success: false, error }, retryAfter)
}

// The documented table (shared/spec/vibe-api.md) and what delivery does about each code.
const DOCUMENTED: Array<[number, string, Action]> = [
  [400, 'MISSING_PARAMS', 'rejected'],
  [401, 'MISSING_API_KEY', 'keyFailure'],
  [401, 'INVALID_API_KEY', 'keyFailure'],
  [401, 'INVALID_APP_KEY', 'keyFailure'],
  [401, 'TOKEN_MISSING', 'keyFailure'],
  [401, 'TOKEN_EXPIRED', 'keyFailure'],
  [403, 'SCOPE_DENIED', 'keyFailure'],
  [403, 'BITRIX_ACCESS_DENIED', 'tokenFailure'],
  [403, 'OAUTH_REQUIRED', 'keyFailure'],
  [403, 'WRITE_BLOCKED_READONLY_KEY', 'keyFailure'],
  [422, 'BITRIX_ERROR', 'rejected'],
  [429, 'RATE_LIMITED', 'rateLimited'],
  [500, 'INTERNAL_ERROR', 'retry'],
  [502, 'BITRIX_UNAVAILABLE', 'retry'],
  [504, 'QUEUE_TIMEOUT', 'rateLimited']
]

t.test('RULES covers exactly the documented codes', async (t) => {
  t.same(Object.keys(RULES).sort(), DOCUMENTED.map(([, code]) => code).sort())
  for (const [code, rule] of Object.entries(RULES)) {
    t.ok(rule.advice.length > 10, `${code} has advice`)
  }
})

t.test('every documented code maps to its action', async (t) => {
  for (const [status, code, action] of DOCUMENTED) {
    t.equal(RULES[code]?.action, action, `RULES.${code}`)
    const v = classify(failure(status, { code, message: `msg of ${code}` }), NOW)
    t.same(v, {
      action,
      status,
      code,
      advice: RULES[code]?.advice,
      message: `msg of ${code}`,
      hint: undefined,
      warning: undefined,
      retryAfter: undefined,
      ambiguous: false
    }, `${status} ${code}`)
  }
})

t.test('the code decides, not the status', async (t) => {
  t.equal(classify(failure(400, { code: 'RATE_LIMITED' }), NOW).action, 'rateLimited')
  t.equal(classify(failure(500, { code: 'BITRIX_ACCESS_DENIED' }), NOW).action, 'tokenFailure')
})

t.test('unknown codes are classified by status', async (t) => {
  const cases: Array<[number, Action]> = [
    [429, 'rateLimited'],
    [401, 'keyFailure'],
    [500, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [504, 'retry'],
    [599, 'retry'],
    [408, 'retry'],
    [400, 'rejected'],
    [403, 'rejected'],
    [404, 'rejected'],
    [405, 'rejected'],
    [409, 'rejected'],
    [413, 'rejected'],
    [422, 'rejected'],
    [302, 'rejected'],
    [100, 'rejected']
  ]
  for (const [status, action] of cases) {
    const v = classify(failure(status, { code: 'SOMETHING_NEW', message: 'new' }), NOW)
    t.equal(v.action, action, `${status} → ${action}`)
    t.equal(v.code, 'SOMETHING_NEW', `${status}: the server's code is kept`)
    t.equal(v.advice, `the server answered HTTP ${status}`, `${status}: generic advice`)
  }
})

t.test('names on Object.prototype are not rules', async (t) => {
  for (const code of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const v = classify(failure(403, { code }), NOW)
    t.equal(v.action, 'rejected', `${code}: by status`)
    t.equal(v.advice, 'the server answered HTTP 403', `${code}: generic advice`)
  }
})

t.test('an unparsable body is classified by status', async (t) => {
  const html = '<html><body>502 Bad Gateway</body></html>'
  const cases: Array<[number, Action]> = [[502, 'retry'], [429, 'rateLimited'], [401, 'keyFailure'], [408, 'retry'], [404, 'rejected']]
  for (const [status, action] of cases) {
    const v = classify(answer(status, html), NOW)
    t.equal(v.action, action, `${status} → ${action}`)
    t.equal(v.code, `HTTP_${status}`, `${status}: code made from the status`)
    t.equal(v.message, undefined)
  }
  t.equal(classify(answer(500, ''), NOW).code, 'HTTP_500', 'empty body')
})

t.test('a body that is JSON but not an envelope is classified by status', async (t) => {
  for (const body of ['null', '42', '"text"', '[]', 'true']) {
    const v = classify(answer(503, body), NOW)
    t.equal(v.action, 'retry', body)
    t.equal(v.code, 'HTTP_503', body)
  }
})

t.test('an error that is not an object, or a code that is not a string, falls back to the status', async (t) => {
  t.equal(classify(answer(401, { success: false, error: null }), NOW).code, 'HTTP_401')
  t.equal(classify(answer(401, { success: false, error: 'INVALID_API_KEY' }), NOW).code, 'HTTP_401')
  t.equal(classify(failure(401, { code: 7 }), NOW).code, 'HTTP_401')
  t.equal(classify(failure(401, { code: '' }), NOW).code, 'HTTP_401')
  t.equal(classify(failure(401, {}), NOW).action, 'keyFailure')
})

t.test('200 with success:true is ok', async (t) => {
  t.same(classify(answer(200, { success: true, data: null }), NOW), {
    action: 'ok',
    status: 200,
    code: 'OK',
    advice: 'the server answered HTTP 200',
    message: undefined,
    hint: undefined,
    warning: undefined,
    retryAfter: undefined,
    ambiguous: false
  })
})

t.test('any 2xx not saying success:false is ok', async (t) => {
  t.equal(classify(answer(201, { success: true }), NOW).action, 'ok')
  t.equal(classify(answer(204, ''), NOW).action, 'ok', 'no body')
  t.equal(classify(answer(200, 'OK'), NOW).action, 'ok', 'plain text body')
  t.equal(classify(answer(299, {}), NOW).action, 'ok', 'no success field')
})

t.test('2xx with success:false is rejected', async (t) => {
  const v = classify(answer(200, { success: false }), NOW)
  t.equal(v.action, 'rejected')
  t.equal(v.code, 'HTTP_200')
  const coded = classify(failure(200, { code: 'BITRIX_ERROR', message: 'refused' }), NOW)
  t.equal(coded.action, 'rejected')
  t.equal(coded.code, 'BITRIX_ERROR')
  t.equal(coded.message, 'refused')
  t.equal(classify(failure(200, { code: 'BITRIX_ACCESS_DENIED' }), NOW).action, 'tokenFailure', 'a known code in a 200 still counts')
})

t.test('a success:true body with a non-2xx status is not ok', async (t) => {
  const v = classify(answer(500, { success: true }), NOW)
  t.equal(v.action, 'retry')
  t.equal(v.code, 'HTTP_500')
})

t.test('hint and warning are extracted', async (t) => {
  const v = classify(failure(429, {
    code: 'RATE_LIMITED',
    message: 'Request rate limit exceeded',
    hint: 'Retry in 1-2 seconds',
    warning: 'The same error repeats on this key: the client most likely has a bug'
  }), NOW)
  t.equal(v.message, 'Request rate limit exceeded')
  t.equal(v.hint, 'Retry in 1-2 seconds')
  t.equal(v.warning, 'The same error repeats on this key: the client most likely has a bug')
})

t.test('empty or non-string message, hint and warning are absent', async (t) => {
  const v = classify(failure(422, { code: 'BITRIX_ERROR', message: '', hint: 3, warning: { a: 1 } }), NOW)
  t.equal(v.message, undefined)
  t.equal(v.hint, undefined)
  t.equal(v.warning, undefined)
})

t.test('network errors: retry, ambiguous only when the request was sent', async (t) => {
  const refused = classify({ error: { code: 'ECONNREFUSED', name: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:9' }, sent: false }, NOW)
  t.same(refused, {
    action: 'retry',
    status: 0,
    code: 'ECONNREFUSED',
    advice: 'the server could not be reached',
    message: 'connect ECONNREFUSED 127.0.0.1:9',
    hint: undefined,
    warning: undefined,
    retryAfter: undefined,
    ambiguous: false
  })
  const reset = classify({ error: { code: 'UND_ERR_SOCKET', name: 'SocketError', message: 'other side closed' }, sent: true }, NOW)
  t.equal(reset.action, 'retry')
  t.equal(reset.ambiguous, true)
  t.equal(reset.code, 'UND_ERR_SOCKET')
  t.equal(reset.advice, 'the connection failed after the request was sent')
  t.equal(reset.status, 0)
})

t.test('a network error without a code is named by its name, else NETWORK_ERROR', async (t) => {
  t.equal(classify({ error: { name: 'AbortError', message: 'aborted' }, sent: true }, NOW).code, 'AbortError')
  t.equal(classify({ error: {}, sent: false }, NOW).code, 'NETWORK_ERROR')
})

t.test('retryAfter from the header, in seconds', async (t) => {
  t.equal(classify(failure(429, { code: 'RATE_LIMITED' }, '2'), NOW).retryAfter, 2000)
  t.equal(classify(failure(429, { code: 'RATE_LIMITED' }, '0'), NOW).retryAfter, 0)
  t.equal(classify(failure(503, { code: 'X' }, ' 1.5 '), NOW).retryAfter, 1500)
})

t.test('retryAfter from the header, as an HTTP date relative to now', async (t) => {
  const date = new Date(NOW + 7000).toUTCString()
  t.equal(classify(failure(429, { code: 'RATE_LIMITED' }, date), NOW).retryAfter, 7000)
  t.equal(classify(failure(429, { code: 'RATE_LIMITED' }, date), NOW + 2000).retryAfter, 5000, 'a later now leaves less')
  t.equal(classify(failure(429, { code: 'RATE_LIMITED' }, date), NOW + 60000).retryAfter, 0, 'a date in the past is now')
})

t.test('retryAfter from the body', async (t) => {
  t.equal(classify(failure(504, { code: 'QUEUE_TIMEOUT', retryAfter: 3 }), NOW).retryAfter, 3000)
  t.equal(classify(failure(429, { code: 'RATE_LIMITED', retryAfter: '4' }), NOW).retryAfter, 4000, 'as a string')
  t.equal(classify(failure(429, { code: 'RATE_LIMITED', retryAfter: -1 }), NOW).retryAfter, undefined, 'negative: unusable')
})

t.test('the header is preferred over the body', async (t) => {
  t.equal(classify(failure(429, { code: 'RATE_LIMITED', retryAfter: 9 }, '1'), NOW).retryAfter, 1000)
})

t.test('an unusable header falls back to the body', async (t) => {
  t.equal(classify(failure(429, { code: 'RATE_LIMITED', retryAfter: 9 }, 'soon'), NOW).retryAfter, 9000)
  t.equal(classify(failure(429, { code: 'RATE_LIMITED', retryAfter: 9 }, ''), NOW).retryAfter, 9000)
})

t.test('retryAfter is read on any answer, success included', async (t) => {
  t.equal(classify(answer(200, { success: true }, '5'), NOW).retryAfter, 5000)
})

t.test('parseRetryAfter', async (t) => {
  const cases: Array<[unknown, number | undefined, string]> = [
    [0, 0, 'number 0'],
    [2, 2000, 'number'],
    [1.5, 1500, 'fractional number'],
    [-1, undefined, 'negative number'],
    [Infinity, undefined, 'infinite number'],
    [NaN, undefined, 'NaN'],
    ['3', 3000, 'digits'],
    ['  3  ', 3000, 'digits with spaces'],
    ['0.25', 250, 'decimal'],
    ['120', 120000, 'large'],
    ['', undefined, 'empty string'],
    ['   ', undefined, 'blank string'],
    ['soon', undefined, 'words'],
    ['1e3', undefined, 'exponent notation'],
    ['5 seconds', undefined, 'number with a unit'],
    [null, undefined, 'null'],
    [undefined, undefined, 'undefined'],
    [{ seconds: 1 }, undefined, 'object'],
    [['1'], undefined, 'array'],
    [true, undefined, 'boolean']
  ]
  for (const [value, expected, name] of cases) t.equal(parseRetryAfter(value, NOW), expected, name)
})

t.test('parseRetryAfter with HTTP dates', async (t) => {
  t.equal(parseRetryAfter('Wed, 15 Jan 2025 12:00:30 GMT', NOW), 30000, 'IMF-fixdate')
  t.equal(parseRetryAfter('Wednesday, 15-Jan-25 12:01:00 GMT', NOW), 60000, 'obsolete RFC 850 form')
  t.equal(parseRetryAfter('Wed Jan 15 12:00:10 2025', Date.parse('Wed Jan 15 12:00:00 2025')), 10000, 'asctime form (local time)')
  t.equal(parseRetryAfter('Wed, 15 Jan 2025 11:00:00 GMT', NOW), 0, 'past date: no wait')
  t.equal(parseRetryAfter(new Date(NOW).toUTCString(), NOW), 0, 'now')
})

t.test('the server\'s texts are kept short: a hostile answer cannot make them large', async (t) => {
  const long = 'x'.repeat(100_000)
  const v = classify({ status: 400, body: JSON.stringify({ success: false, error: { code: long, message: long, hint: long, warning: long } }), retryAfter: undefined }, 0)
  t.equal(v.code.length, 65, 'a code of at most 64 characters and a marker')
  for (const text of [v.message, v.hint, v.warning]) t.equal(text?.length, 301)
  t.equal(v.action, 'rejected')
})

t.test('advice says what happened, not how delivery retries: it adds that itself', async (t) => {
  for (const [code, rule] of Object.entries(RULES)) t.notMatch(rule.advice, /retrying|pauses/, code)
})

t.test('local failures that cannot succeed are dropped, not retried, and never ambiguous', async (t) => {
  for (const code of [ERR_SERIALIZE, 'UND_ERR_INVALID_ARG', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_SSL_WRONG_VERSION_NUMBER']) {
    t.equal(cannotSucceed(code), true, code)
    t.match(classify({ error: { code }, sent: false }, 0), { action: 'rejected', ambiguous: false, status: 0, code }, code)
  }
  t.match(classify({ error: { code: 'UND_ERR_INVALID_ARG' }, sent: false }, 0), { advice: /could not be built/ })
  t.match(classify({ error: { code: 'ECONNREFUSED' }, sent: false }, 0), { action: 'retry', advice: 'the server could not be reached' })
  t.equal(cannotSucceed('ECONNRESET'), false)
})

t.test('X-RateLimit headers: all three plain counts, reset as seconds from now, epoch seconds or epoch ms', async (t) => {
  const h = (limit?: string, remaining?: string, reset?: string) => ({ limit, remaining, reset })
  t.same(parseRateLimit(h('300', '12', '30'), NOW), { limit: 300, remaining: 12, resetAt: NOW + 30_000 })
  t.same(parseRateLimit(h('300', '12', '1700000030'), NOW), { limit: 300, remaining: 12, resetAt: 1_700_000_030_000 })
  t.same(parseRateLimit(h('300', '12', '1700000030000'), NOW), { limit: 300, remaining: 12, resetAt: 1_700_000_030_000 })
  t.equal(parseRateLimit(undefined, NOW), undefined)
  t.equal(parseRateLimit(h('300', '12'), NOW), undefined, 'a missing header')
  t.equal(parseRateLimit(h('300', '-1', '30'), NOW), undefined, 'not a count')
  t.equal(parseRateLimit(h('lots', '1', '30'), NOW), undefined)
  t.equal(parseRateLimit(h('300', '1', '9'.repeat(40)), NOW), undefined, 'absurdly long')
  const verdict = classify({ status: 200, body: '{"success":true}', retryAfter: undefined, rateLimit: h('300', '0', '5') }, NOW)
  t.same(verdict.rateLimit, { limit: 300, remaining: 0, resetAt: NOW + 5000 })
})

t.test('no status within requestTimeout: ambiguous; a proxy refusal: a configuration error, nothing sent', async (t) => {
  t.match(classify({ error: { code: ERR_DEADLINE }, sent: true }, 0), { action: 'retry', ambiguous: true, advice: 'no answer within requestTimeout; the request may have landed' })
  t.match(classify({ error: { code: ERR_PROXY_AUTH, message: 'the proxy answered HTTP 407 to CONNECT' }, sent: false }, 0),
    { action: 'rejected', ambiguous: false, advice: /^proxy authentication failed \(the proxy answered HTTP 407 to CONNECT\): a configuration error/ })
  t.match(classify({ error: { code: ERR_PROXY_REFUSED, message: 'the proxy answered HTTP 502 to CONNECT' }, sent: false }, 0),
    { action: 'rejected', ambiguous: false, advice: /^the proxy refused the connection to the API \(the proxy answered HTTP 502 to CONNECT\)/ })
})
