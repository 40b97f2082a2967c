import { StringDecoder } from 'node:string_decoder'
import { Writable } from 'node:stream'

/**
 * Characters a line may have: a longer one is skipped and counted (lineTooLong),
 * so that garbage without newlines cannot grow the buffer for ever, whoever
 * writes it (the pipe mode's stdin, a stream written to in-process). Far above
 * any entry (64 KB) and any line pino writes.
 */
export const MAX_LINE_LENGTH = 16 * 1024 * 1024

/**
 * Where lines come in: pino's writes in the worker (strings), or the pipe
 * mode's bytes from stdin; whole lines out, each handed on exactly once (the
 * transport takes them as lines and does not split them again). Strings are
 * split as they come, never encoded to bytes and decoded back, and a line is
 * handed on as it is cut: nothing is pushed to a readable side. A line is
 * what ends at `\n` (a `\r` before it goes too); a last line without one
 * counts when the input ends. A line longer than `maxLength` characters is
 * skipped, without holding it, up to its end, and reported once, so that
 * garbage without newlines never grows the buffer.
 */
export class LineSplitter extends Writable {
  private readonly maxLength: number
  private readonly onLine: (line: string) => void
  private readonly onTooLong: () => void
  private readonly decoder = new StringDecoder('utf8')
  private last = ''
  /** Skipping the rest of a line that was too long. */
  private skipping = false

  constructor (maxLength: number, onLine: (line: string) => void, onTooLong: () => void) {
    super({ decodeStrings: false })
    this.maxLength = maxLength
    this.onLine = onLine
    this.onTooLong = onTooLong
  }

  override _write (chunk: Buffer | string, encoding: BufferEncoding | 'buffer', callback: (error?: Error | null) => void): void {
    // A string in another encoding (hex, base64) is bytes spelled out: decoded like bytes.
    if (typeof chunk === 'string' && encoding !== 'utf8' && encoding !== 'utf-8') chunk = Buffer.from(chunk, encoding as BufferEncoding)
    this.take(typeof chunk === 'string' ? chunk : this.decoder.write(chunk))
    callback()
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.take(this.decoder.end())
    if (this.last !== '') this.hand(this.last)
    this.last = ''
    callback()
  }

  private take (text: string): void {
    let start = 0
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      const piece = text.slice(start, end)
      start = end + 1
      if (this.skipping) {
        this.skipping = false
        continue
      }
      const whole = this.last === '' ? piece : this.last + piece
      this.last = ''
      this.hand(whole.endsWith('\r') ? whole.slice(0, -1) : whole)
    }
    if (this.skipping) return
    this.last += text.slice(start)
    if (this.last.length > this.maxLength) {
      // Reported when it starts: the line is lost whether or not its end ever comes.
      this.last = ''
      this.skipping = true
      this.onTooLong()
    }
  }

  // Not named `line`: the transport's stream (a LineSplitter) has a `line` property of its own.
  private hand (line: string): void {
    if (line.length > this.maxLength) this.onTooLong()
    else this.onLine(line)
  }
}
