import t from 'tap'
import { hidden, looksSecret, Redactor, redactorFor, redactUrl } from '../lib/redact'

t.test('looksSecret: Vibe keys by their prefix, in any case, anywhere', async (t) => {
  t.equal(looksSecret('vibe_api_not_a_real_key'), true)
  t.equal(looksSecret('VIBE_APP_X'), true)
  t.equal(looksSecret('https://example.com/vibe_api_not_a_real_key'), true)
  t.equal(looksSecret('warn'), false)
  t.equal(looksSecret('vibe_apx_'), false)
})

t.test('looksSecret: the configured secrets, whole or inside a longer value', async (t) => {
  const secrets = ['plain-session-token-1', undefined, '', 'short']
  t.equal(looksSecret('plain-session-token-1', secrets), true)
  t.equal(looksSecret('https://h/plain-session-token-1/x', secrets), true, 'inside a URL')
  t.equal(looksSecret('short', secrets), true, 'a short secret as the whole value')
  t.equal(looksSecret('shortly', secrets), false, 'but not inside another word')
  t.equal(looksSecret('anything', secrets), false, 'an empty secret matches nothing')
})

t.test('hidden says what was given, not what it was', async (t) => {
  t.equal(hidden('vibe_api_not_a_real_key'), 'a string of 23 characters that looks like a key or token (not shown)')
})

t.test('redactUrl: userinfo, query and fragment never shown, whatever the password holds', async (t) => {
  const cases: Array<[string, string]> = [
    ['https://example.com/api', 'https://example.com/api'],
    ['https://example.com/api?key=k#f', 'https://example.com/api?…'],
    ['https://user:pass@example.com', 'https://…@example.com/'],
    ['https://user:p@ss@example.com/v1', 'https://…@example.com/v1'],
    ['https://user:p@ss@example.com/v1?x=1', 'https://…@example.com/v1?…'],
    ['https://user:12/ss@example.com', 'https:…@example.com'],
    ['https://user:pa/ss@example.com', 'https:…@example.com'],
    // Userinfo the parser ends at the first '@', the rest of the password in the host and path.
    ['https://user:p@ss/word@example.com/v1', 'https://…@example.com/v1'],
    ['https://user:p@ss/pa55@example.com:8443', 'https://…@example.com:8443'],
    ['https:\\\\user:pa55@example.com\\v1', 'https://…@example.com/v1'],
    ['https://:pass@example.com', 'https://…@example.com/'],
    ['user:pass@example.com', 'user:…@example.com'],
    ['not a url @ all?x', '…@ all?…'],
    ['not a url', 'not a url']
  ]
  for (const [url, shown] of cases) {
    const out = redactUrl(url)
    t.equal(out, shown, url)
    t.notMatch(out, /pass|pa55|p@ss|ss@|ss\/|word|12\//, `${url}: no part of the password`)
  }
})

t.test('Redactor: every configured secret of 8 characters or more goes, the longest first; shorter ones stay', async (t) => {
  const r = new Redactor(['secret-key-1', undefined, 'secret-key-1-and-more', 'short', 'secret-key-1'])
  t.equal(r.redact('a secret-key-1-and-more b secret-key-1 c short'), 'a … b … c short')
  t.equal(r.redact('nothing here'), 'nothing here')
})

t.test('redactorFor: the key, the session token, and the credentials of the proxy and Redis URLs, as written and decoded', async (t) => {
  const r = redactorFor({
    apiKey: 'vibe_api_0123456789',
    sessionToken: 'session-0123456789',
    proxy: 'http://proxyuser1:proxy%40pass@proxy.example:3128',
    redisUrl: 'redis://:redis%E0%A4%A-password@redis.example:6379'
  })
  const text = 'vibe_api_0123456789 session-0123456789 proxyuser1 proxy%40pass proxy@pass redis%E0%A4%A-password'
  t.equal(r.redact(text), '… … … … … …', 'an undecodable password is still taken out as written')
  t.equal(redactorFor({ apiKey: 'vibe_api_0123456789', sessionToken: undefined, proxy: 'not a url', redisUrl: undefined }).redact('not a url'), 'not a url')
})
