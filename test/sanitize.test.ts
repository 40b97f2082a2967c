import t from 'tap'
import { sanitize } from '../lib/sanitize'

const ZWSP = '\u200b'
const FFFD = '\ufffd'

t.test('clean text is returned unchanged', async (t) => {
  const texts = [
    '',
    'Rows parsed rows=120',
    'line one\nline two\n\tindented',
    'Строки разобраны: 120, 行已解析',
    'ünïcödé é ß ﬀ \u00a0 \u200b',
    '[b]bold[/b] {Document:TITLE} [timestamp] {user:1} =user: { =x}',
    '\ufffd already replaced'
  ]
  for (const text of texts) {
    t.equal(sanitize(text, false), text, JSON.stringify(text))
    t.equal(sanitize(text, true), text, `${JSON.stringify(text)} with keepNonBmp`)
  }
})

t.test('C0 control characters are removed', async (t) => {
  t.equal(sanitize('a\0b\x01c\x07d\x08e', false), 'abcde', 'NUL, SOH, BEL, BS')
  t.equal(sanitize('a\x0bb\x0cc', false), 'abc', 'VT and FF')
  t.equal(sanitize('a\x0ed\x1b[31mred\x1b[0m\x1f', false), 'ad[31mred[0m', 'SO, ESC, US')
})

t.test('newline and tab are kept', async (t) => {
  t.equal(sanitize('a\nb\tc\x01', false), 'a\nb\tc')
})

t.test('carriage return is removed', async (t) => {
  t.equal(sanitize('line one\r\nline two\r', false), 'line one\nline two')
})

t.test('DEL is removed', async (t) => {
  t.equal(sanitize('a\x7fb', false), 'ab')
})

t.test('C1 control characters are removed', async (t) => {
  t.equal(sanitize('a\x80b\x85c\x9bd\x9fe', false), 'abcde')
  t.equal(sanitize('\xa0\xff', false), '\xa0\xff', 'Latin-1 above C1 is kept')
})

t.test('characters outside the BMP become U+FFFD', async (t) => {
  t.equal(sanitize('done 🎉', false), `done ${FFFD}`, 'one emoji, one replacement')
  t.equal(sanitize('𝒳 and 😀😀', false), `${FFFD} and ${FFFD}${FFFD}`, 'each astral character once')
  t.equal(sanitize('👍🏽', false), FFFD + FFFD, 'emoji with a skin-tone modifier')
})

t.test('keepNonBmp keeps them', async (t) => {
  t.equal(sanitize('done 🎉 𝒳', true), 'done 🎉 𝒳')
})

t.test('lone surrogates are always replaced', async (t) => {
  t.equal(sanitize('a\ud83db', false), `a${FFFD}b`, 'lone high surrogate')
  t.equal(sanitize('a\ude00b', true), `a${FFFD}b`, 'lone low surrogate, keepNonBmp')
  t.equal(sanitize('end\ud83d', true), `end${FFFD}`, 'high surrogate at the end')
  t.equal(sanitize('\ude00start', true), `${FFFD}start`, 'low surrogate at the start')
  t.equal(sanitize('\ude00\ud83d', true), FFFD + FFFD, 'reversed pair')
  t.equal(sanitize('\ud83d\ud83d\ude00', true), `${FFFD}😀`, 'a lone high before a pair keeps the pair')
  t.equal(sanitize('😀\ude00', true), `😀${FFFD}`, 'a lone low after a pair keeps the pair')
})

t.test('the result encodes to UTF-8 without loss', async (t) => {
  const out = sanitize('x\ud800y\udfffz🎉', true)
  t.equal(Buffer.from(out, 'utf8').toString('utf8'), out)
})

t.test('[timestamp=…]…[/timestamp] is neutralised', async (t) => {
  const out = sanitize('at [timestamp=1700000000]time[/timestamp] done', false)
  t.equal(out, `at [${ZWSP}timestamp=1700000000]time[${ZWSP}/timestamp] done`)
  t.equal(out.replaceAll(ZWSP, ''), 'at [timestamp=1700000000]time[/timestamp] done', 'shows as written')
})

t.test('a closing [/timestamp] on its own is neutralised', async (t) => {
  t.equal(sanitize('x[/timestamp] y', false), `x[${ZWSP}/timestamp] y`)
})

t.test('{=user:user_1} is neutralised', async (t) => {
  const out = sanitize('assigned to {=user:user_1} and {=user:user_22}', false)
  t.equal(out, `assigned to {${ZWSP}=user:user_1} and {${ZWSP}=user:user_22}`)
  t.equal(out.replaceAll(ZWSP, ''), 'assigned to {=user:user_1} and {=user:user_22}', 'shows as written')
})

t.test('markup that forms once controls are removed is neutralised too', async (t) => {
  t.equal(sanitize('[time\x01stamp=1]', false), `[${ZWSP}timestamp=1]`)
  t.equal(sanitize('{=\x7fuser:user_1}', false), `{${ZWSP}=user:user_1}`)
})

t.test('everything at once', async (t) => {
  t.equal(
    sanitize('\x1b[1m{=user:user_1}\r\n🎉\ud800 [timestamp=5]\x85', false),
    `[1m{${ZWSP}=user:user_1}\n${FFFD}${FFFD} [${ZWSP}timestamp=5]`
  )
})

t.test('repeated calls give the same answer (no regex state carried over)', async (t) => {
  const input = 'a\x01b 🎉 {=user:user_1}'
  const first = sanitize(input, false)
  for (let i = 0; i < 5; i++) t.equal(sanitize(input, false), first, `call ${i + 2}`)
})

t.test('markup is neutralised in any letter case', async (t) => {
  t.equal(sanitize('[TIMESTAMP=1700000000]x[/TimeStamp]', false), `[${ZWSP}TIMESTAMP=1700000000]x[${ZWSP}/TimeStamp]`)
  t.equal(sanitize('{=USER:user_1}', false), `{${ZWSP}=USER:user_1}`)
})

t.test('every {=Source:Field} form is neutralised, and {{=expressions}}', async (t) => {
  for (const markup of ['{=Document:TITLE}', '{=Variable:Total}', '{=Constant:Rate}', '{=GlobalVar:X}', '{=Template:Name}', '{=Workflow:ID}', '{=A12345_67890_1234_5678:Result}']) {
    const out = sanitize(`see ${markup} here`, false)
    t.equal(out, `see {${ZWSP}${markup.slice(1)} here`, markup)
    t.equal(out.replaceAll(ZWSP, ''), `see ${markup} here`, 'shows as written')
  }
  t.equal(sanitize('{{=dateadd({=Document:DATE}, "1d")}}', false), `{{${ZWSP}=dateadd({${ZWSP}=Document:DATE}, "1d")}}`)
})

t.test('text that would show as a blank row becomes empty', async (t) => {
  t.equal(sanitize('\u200b\u200b\u200b', false), '', 'zero-width spaces only')
  t.equal(sanitize(' \u200c\u200d\u2060\ufeff\u00ad\u202e\u2066\u3164 \t', false), '', 'any mix of invisible characters')
  t.equal(sanitize('\x01\u200b\x7f', false), '', 'also once controls are removed')
  t.equal(sanitize('\u200bx\u200b', false), '\u200bx\u200b', 'one visible character keeps it')
  t.equal(sanitize('', false), '')
})
