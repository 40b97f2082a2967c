/**
 * What one request carries for one token. Formed when the request can go (see
 * TokenQueue.take), and never changed afterwards: a retry resends this text.
 */
export interface Entry {
  text: string
  bytes: number
  lines: number
  /** When its oldest line was queued. */
  since: number
  /** Failed attempts so far. */
  attempts: number
  /** Set for the entry that completes the activity. */
  returnValues: Record<string, unknown> | undefined
  /** Delivered or given up on; an answer that comes after is ignored. */
  settled: boolean
}

/**
 * Where a token stands. One request per token at a time keeps its lines in order.
 * - collecting: lines may wait here until the token is ready (flushInterval, a full entry, a flush);
 * - ready: waiting in the scheduler for a request slot;
 * - sending: a request is in flight;
 * - retryWait: an attempted entry waits for its retry.
 */
export type Phase = 'collecting' | 'ready' | 'sending' | 'retryWait'

const EMPTY = Buffer.alloc(0)
// The first arena of a token: most workflows log a few short lines.
const FIRST_ARENA = 1024

/** A completion waiting behind the token's lines. */
interface Completion {
  text: string
  bytes: number
  since: number
  returnValues: Record<string, unknown>
}

/**
 * Everything queued for one event token: its lines, oldest first, as given;
 * they become an entry only when `take` is called for a request that goes now,
 * so a token that must wait grows a fuller entry, never more entries.
 */
export class TokenQueue {
  readonly token: string
  phase: Phase = 'collecting'
  /**
   * Pending lines as UTF-8 bytes in one arena, each followed by a newline,
   * from `start` to `end`; their sizes and arrival times from `head` on. A
   * line's string dies young once written here: under a flood into a stalled
   * server, queued and evicted lines do not pile up as garbage in V8's old
   * generation, and an entry is one decode of a contiguous range.
   */
  private arena: Buffer = EMPTY
  private start = 0
  private end = 0
  private sizes: number[] = []
  private times: number[] = []
  private head = 0
  /** UTF-8 bytes of pending lines, without the newlines that will join them. */
  pendingBytes = 0
  private completion: Completion | undefined = undefined
  /** Its activity was completed through the stream: no more lines are taken. */
  closed = false
  /** The entry attempted and not settled: in flight, or waiting for its retry. */
  current: Entry | undefined = undefined
  /** Lines ever queued; lines gone from the pending queue (taken or dropped); lines delivered or given up on. */
  pushed = 0
  consumed = 0
  finished = 0
  /** Until `consumed` reaches this, the token is ready whatever its age (flush, close). */
  forceUntil = 0
  /** The flushInterval timer, while collecting. */
  timer: unknown = undefined
  /** Place in the scheduler's heap, -1 when not there; when and in which order it joined the waiting line. */
  heapIndex = -1
  order = 0
  readySince = 0
  /** flush() callers waiting for `finished` to reach a count. Lines finish in order, so a count is enough. */
  private waiters: Array<{ upTo: number, resolve: () => void }> | undefined = undefined

  constructor (token: string) {
    this.token = token
  }

  /** Resolves once every line queued so far is delivered or given up on. */
  settled (): Promise<void> {
    if (this.finished >= this.pushed) return Promise.resolve()
    const upTo = this.pushed
    return new Promise((resolve) => { (this.waiters ??= []).push({ upTo, resolve }) })
  }

  /** `n` more lines were delivered or given up on. */
  finish (n: number): void {
    this.finished += n
    const waiters = this.waiters
    if (waiters === undefined) return
    let i = 0
    while (i < waiters.length && (waiters[i] as { upTo: number }).upTo <= this.finished) (waiters[i++] as { resolve: () => void }).resolve()
    this.waiters = i === waiters.length ? undefined : waiters.slice(i)
  }

  get pendingLines (): number {
    return this.sizes.length - this.head
  }

  /** Lines or a completion still to be sent (not counting the entry attempted). */
  get hasWork (): boolean {
    return this.head < this.sizes.length || this.completion !== undefined
  }

  /** Nothing queued, nothing attempted: the token can be forgotten. */
  get idle (): boolean {
    return this.current === undefined && !this.hasWork
  }

  /** A completion waits behind the lines. */
  get completing (): boolean {
    return this.completion !== undefined
  }

  /** When the oldest thing still to be sent was queued. */
  get headSince (): number {
    return this.head < this.sizes.length ? this.times[this.head] as number : this.completion?.since ?? 0
  }

  /** Whether the oldest pending text would fill an entry by itself. */
  full (maxBytes: number): boolean {
    return this.pendingBytes + this.pendingLines - 1 >= maxBytes
  }

  /** Queues a line; returns its UTF-8 size. */
  push (text: string, now: number): number {
    // Room for the worst case (3 bytes per UTF-16 unit): encoding once is all the line costs.
    const room = text.length * 3 + 1
    if (this.end + room > this.arena.length) this.grow(room)
    const bytes = this.arena.write(text, this.end, 'utf8')
    this.end += bytes
    this.arena[this.end++] = 10
    this.sizes.push(bytes)
    this.times.push(now)
    this.pendingBytes += bytes
    this.pushed++
    return bytes
  }

  /** Queues the completion behind every line; it goes as its own request. */
  complete (text: string, bytes: number, returnValues: Record<string, unknown>, now: number): void {
    this.completion = { text, bytes, since: now, returnValues }
    this.closed = true
    this.pushed++
  }

  /** Makes room for `need` more bytes: moves the live bytes to the front, or into an arena twice as large. */
  private grow (need: number): void {
    const live = this.end - this.start
    const size = this.arena.length
    if (live + need <= size / 2) {
      this.arena.copyWithin(0, this.start, this.end)
    } else {
      // Unpooled: a token's arena is freed with it, never kept alive by another's slab.
      const next = Buffer.allocUnsafeSlow(Math.max(FIRST_ARENA, size * 2, (live + need) * 2))
      this.arena.copy(next, 0, this.start, this.end)
      this.arena = next
    }
    this.start = 0
    this.end = live
  }

  /**
   * Forms the next entry: the oldest lines up to `maxBytes` joined by newlines,
   * or, once no line is left, the completion. `text` is as queued; the caller
   * cleans it.
   */
  take (maxBytes: number): { text: string, bytes: number, lines: number, since: number, returnValues: Record<string, unknown> | undefined } | undefined {
    const start = this.head
    if (start === this.sizes.length) {
      const c = this.completion
      if (c === undefined) return undefined
      this.completion = undefined
      this.consumed++
      return { text: c.text, bytes: c.bytes, lines: 1, since: c.since, returnValues: c.returnValues }
    }
    let end = start + 1
    let bytes = this.sizes[start] as number
    while (end < this.sizes.length && bytes + 1 + (this.sizes[end] as number) <= maxBytes) {
      bytes += 1 + (this.sizes[end] as number)
      end++
    }
    const text = this.arena.toString('utf8', this.start, this.start + bytes)
    const since = this.times[start] as number
    this.advance(end)
    return { text, bytes, lines: end - start, since, returnValues: undefined }
  }

  /** Drops the oldest pending line; returns its bytes, or -1 when none is pending. */
  dropOldest (): number {
    if (this.head === this.sizes.length) return -1
    const bytes = this.sizes[this.head] as number
    this.advance(this.head + 1)
    return bytes
  }

  /** Drops every pending line and the completion; returns what went (`bytes` of lines, `completionBytes` of the completion, -1 if none). */
  dropAll (): { lines: number, bytes: number, completionBytes: number } {
    const lines = this.pendingLines
    const bytes = this.pendingBytes
    const completionBytes = this.completion?.bytes ?? -1
    this.advance(this.sizes.length)
    if (this.completion !== undefined) {
      this.completion = undefined
      this.consumed++
    }
    return { lines, bytes, completionBytes }
  }

  private advance (to: number): void {
    let bytes = 0
    for (let i = this.head; i < to; i++) bytes += this.sizes[i] as number
    this.pendingBytes -= bytes
    this.start += bytes + to - this.head
    this.consumed += to - this.head
    this.head = to
    if (this.head === this.sizes.length) {
      this.sizes = []
      this.times = []
      this.head = 0
      // An emptied arena is kept for the token's next lines unless a burst made it large.
      if (this.arena.length > 64 * 1024) this.arena = EMPTY
      this.start = 0
      this.end = 0
    } else if (this.head > 1024 && this.head * 2 > this.sizes.length) {
      // Let go of what was taken without copying on every take.
      this.sizes = this.sizes.slice(this.head)
      this.times = this.times.slice(this.head)
      this.head = 0
    }
  }
}
