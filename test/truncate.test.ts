import t from 'tap'
import { truncate } from '../lib/truncate'

const MARKER = / … \[truncated (\d+) bytes\]$/

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8')

// Checks every promise truncate makes for one input and limit; returns a
// description of the first broken one, or '' when all hold.
function check (text: string, maxBytes: number): string {
  const out = truncate(text, maxBytes)
  if (bytes(text) <= maxBytes) return out === text ? '' : 'text that fits was changed'
  if (bytes(out) > maxBytes) return `${bytes(out)} bytes > ${maxBytes}`
  const m = MARKER.exec(out)
  if (m === null) return 'no marker'
  const kept = out.slice(0, m.index)
  if (!text.startsWith(kept)) return 'kept text is not a prefix of the input'
  if (kept.includes('\ufffd')) return 'a UTF-8 sequence was split'
  if (Number(m[1]) !== bytes(text) - bytes(kept)) return `marker says ${m[1]}, cut ${bytes(text) - bytes(kept)}`
  return ''
}

t.test('short text is returned unchanged', async (t) => {
  t.equal(truncate('', 256), '')
  t.equal(truncate('hello', 256), 'hello')
  const exact = 'я'.repeat(128)
  t.equal(bytes(exact), 256)
  t.equal(truncate(exact, 256), exact, 'exactly maxBytes fits')
})

t.test('ASCII text is cut to maxBytes with the marker', async (t) => {
  const out = truncate('x'.repeat(1000), 256)
  t.equal(bytes(out), 256, 'uses the room it has')
  t.match(out, /^x+ … \[truncated 770 bytes\]$/)
  t.equal(check('x'.repeat(1000), 256), '')
})

t.test('one byte over the limit', async (t) => {
  const text = 'x'.repeat(257)
  const out = truncate(text, 256)
  t.equal(check(text, 256), '')
  t.equal(bytes(out), 256)
  t.match(out, / … \[truncated 26 bytes\]$/)
})

t.test('a marker whose number gains a digit is settled', async (t) => {
  // Around the point where the cut grows from 2 to 3 digits.
  const failures: string[] = []
  for (let len = 100; len < 400; len++) {
    for (const max of [60, 64, 100, 127, 128, 129]) {
      const problem = check('x'.repeat(len), max)
      if (problem !== '') failures.push(`${len}/${max}: ${problem}`)
    }
  }
  t.same(failures, [])
})

const SAMPLES: Record<string, string> = {
  Cyrillic: 'Строки разобраны, всё хорошо. ',
  emoji: '🎉👍🏽😀 ok ',
  CJK: '行已解析，一切正常。',
  mixed: 'a é 行 🎉 ß \n',
  'emoji only': '😀',
  'two-byte only': 'é'
}

for (const [name, sample] of Object.entries(SAMPLES)) {
  t.test(`${name}: never above maxBytes, never a split sequence, correct count`, async (t) => {
    const failures: string[] = []
    for (const repeat of [1, 3, 10, 50, 200]) {
      const text = sample.repeat(repeat)
      for (let max = 40; max <= 700; max++) {
        const problem = check(text, max)
        if (problem !== '') failures.push(`${repeat}×, max ${max}: ${problem}`)
      }
    }
    t.same(failures, [])
  })
}

t.test('a large entry at the default size', async (t) => {
  const text = 'Строка журнала 🎉 行 '.repeat(5000)
  for (const max of [16384, 65535]) {
    const out = truncate(text, max)
    t.equal(check(text, max), '', `max ${max}`)
    t.ok(bytes(out) > max - 4 - 40, `max ${max}: at most a character and the marker short of the limit`)
  }
})

t.test('a limit smaller than the marker itself leaves only the marker', async (t) => {
  // The options never allow this (maxEntryBytes >= 256); it documents the behaviour.
  const out = truncate('x'.repeat(100), 10)
  t.equal(out, ' … [truncated 100 bytes]')
  t.ok(bytes(out) > 10, 'the marker alone is longer than the limit')
})
