/** Lines joined as one entry would take them: in a pooled buffer (`chunk`, UTF-8), or as one string (`text`). */
export interface Batch {
  text: string | undefined
  chunk: Buffer | undefined
  /** UTF-8 bytes of the joined lines. */
  bytes: number
  lines: number
  since: number
}

/**
 * Buffers of one size (maxEntryBytes), handed out and taken back. A token's
 * batches of pending lines that fill at least half an entry are kept in them
 * as UTF-8, off V8's heap, and a buffer is reused once its lines are sent or
 * dropped: under a flood the queue's bytes are the same buffers over and
 * over, not strings that the collector must copy, promote and sweep. At most
 * `keep` buffers wait here.
 */
export class ChunkPool {
  readonly size: number
  private readonly keep: number
  private readonly free: Buffer[] = []

  constructor (size: number, keep: number) {
    this.size = size
    this.keep = keep
  }

  get (): Buffer {
    // Never read beyond what was written into it: unsafe is only uninitialised.
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size)
  }

  put (buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf)
  }

  /**
   * Lines gathered for one entry (`bytes` joined, at most `size` when there are
   * several) as a batch: in a buffer when they fill half of one or more, else
   * joined into one flat string (a lone line stays as it is).
   */
  seal (lines: string[], bytes: number, since: number): Batch {
    if (lines.length === 1 || bytes * 2 < this.size) {
      return { text: lines.length === 1 ? lines[0] as string : lines.join('\n'), chunk: undefined, bytes, lines: lines.length, since }
    }
    const chunk = this.get()
    // Joined first: one write is faster than a write per line, and the joined string dies young.
    const joined = lines.join('\n')
    // A reused buffer holds older lines past what is written: only what was
    // written may ever be read back. Should the count not match, the text stays a string.
    if (chunk.write(joined, 0) !== bytes) {
      this.put(chunk)
      return { text: joined, chunk: undefined, bytes, lines: lines.length, since }
    }
    return { text: undefined, chunk, bytes, lines: lines.length, since }
  }

  /** A batch's lines as text; its buffer comes back. */
  text (batch: Batch): string {
    const chunk = batch.chunk
    if (chunk === undefined) return batch.text as string
    const text = chunk.toString('utf8', 0, batch.bytes)
    this.put(chunk)
    return text
  }

  /** A batch dropped unread: its buffer comes back. */
  drop (batch: Batch): void {
    if (batch.chunk !== undefined) this.put(batch.chunk)
  }
}
