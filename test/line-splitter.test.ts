import t from 'tap'
import { LineSplitter } from '../lib/line-splitter'

function splitter (max: number) {
  const lines: string[] = []
  let tooLong = 0
  const s = new LineSplitter(max, (line) => { lines.push(line) }, () => { tooLong++ })
  const end = async (last?: string): Promise<void> => {
    await new Promise<void>((resolve) => { s.end(last, resolve) })
  }
  return { s, lines, tooLong: () => tooLong, end }
}

t.test('each line once, whatever the chunks; \\r\\n and a last line without a newline', async (t) => {
  const { s, lines, end } = splitter(100)
  s.write('one\ntw')
  s.write('o\r\n\nthr')
  s.write(Buffer.from('ee '))
  // A character split across chunks is decoded whole.
  const emoji = Buffer.from('😀 four\n')
  s.write(emoji.subarray(0, 2))
  s.write(emoji.subarray(2))
  await end('five')
  t.same(lines, ['one', 'two', '', 'three 😀 four', 'five'])
})

t.test('a line over maxLength is skipped up to its end and reported once; the next one is not', async (t) => {
  const { s, lines, tooLong, end } = splitter(10)
  s.write('before\n')
  s.write('x'.repeat(8))
  s.write('x'.repeat(8))
  t.equal(tooLong(), 1, 'reported when the buffer would pass the cap')
  s.write('x'.repeat(100))
  s.write('xx\nafter\n')
  s.write('y'.repeat(20) + '\nlast\n')
  await end()
  t.same(lines, ['before', 'after', 'last'])
  t.equal(tooLong(), 2, 'one too long inside a chunk counts too')
})

t.test('a too-long line still being skipped when the input ends is not handed on', async (t) => {
  const { s, lines, tooLong, end } = splitter(4)
  s.write('ok\n')
  await end('z'.repeat(9))
  t.same(lines, ['ok'])
  t.equal(tooLong(), 1)
})

t.test('nothing at all: no line', async (t) => {
  const { lines, end } = splitter(4)
  await end()
  t.same(lines, [])
})

t.test('strings are split as they come; a string in another encoding is decoded as bytes', async (t) => {
  const { s, lines, end } = splitter(100)
  s.write('plain ')
  s.write('74657874', 'hex')
  s.write(Buffer.from(' & more\n'))
  s.write('dXRmLTgK', 'base64')
  await end()
  t.same(lines, ['plain text & more', 'utf-8'])
})
