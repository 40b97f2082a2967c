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
  /** Pending lines, from `head` on, with their UTF-8 sizes and arrival times. */
  private lines: string[] = []
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
    return this.lines.length - this.head
  }

  /** Lines or a completion still to be sent (not counting the entry attempted). */
  get hasWork (): boolean {
    return this.head < this.lines.length || this.completion !== undefined
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
    return this.head < this.lines.length ? this.times[this.head] as number : this.completion?.since ?? 0
  }

  /** Whether the oldest pending text would fill an entry by itself. */
  full (maxBytes: number): boolean {
    return this.pendingBytes + this.pendingLines - 1 >= maxBytes
  }

  push (text: string, bytes: number, now: number): void {
    this.lines.push(text)
    this.sizes.push(bytes)
    this.times.push(now)
    this.pendingBytes += bytes
    this.pushed++
  }

  /** Queues the completion behind every line; it goes as its own request. */
  complete (text: string, bytes: number, returnValues: Record<string, unknown>, now: number): void {
    this.completion = { text, bytes, since: now, returnValues }
    this.closed = true
    this.pushed++
  }

  /**
   * Forms the next entry: the oldest lines up to `maxBytes` joined by newlines,
   * or, once no line is left, the completion. `text` is as queued; the caller
   * cleans it.
   */
  take (maxBytes: number): { text: string, bytes: number, lines: number, since: number, returnValues: Record<string, unknown> | undefined } | undefined {
    const start = this.head
    if (start === this.lines.length) {
      const c = this.completion
      if (c === undefined) return undefined
      this.completion = undefined
      this.consumed++
      return { text: c.text, bytes: c.bytes, lines: 1, since: c.since, returnValues: c.returnValues }
    }
    let end = start + 1
    let bytes = this.sizes[start] as number
    while (end < this.lines.length && bytes + 1 + (this.sizes[end] as number) <= maxBytes) {
      bytes += 1 + (this.sizes[end] as number)
      end++
    }
    const text = end === start + 1 ? this.lines[start] as string : this.lines.slice(start, end).join('\n')
    const since = this.times[start] as number
    this.advance(end)
    return { text, bytes, lines: end - start, since, returnValues: undefined }
  }

  /** Drops the oldest pending line; returns its bytes, or -1 when none is pending. */
  dropOldest (): number {
    if (this.head === this.lines.length) return -1
    const bytes = this.sizes[this.head] as number
    this.advance(this.head + 1)
    return bytes
  }

  /** Drops every pending line and the completion; returns what went (`bytes` of lines, `completionBytes` of the completion, -1 if none). */
  dropAll (): { lines: number, bytes: number, completionBytes: number } {
    const lines = this.pendingLines
    const bytes = this.pendingBytes
    const completionBytes = this.completion?.bytes ?? -1
    this.advance(this.lines.length)
    if (this.completion !== undefined) {
      this.completion = undefined
      this.consumed++
    }
    return { lines, bytes, completionBytes }
  }

  private advance (to: number): void {
    for (let i = this.head; i < to; i++) this.pendingBytes -= this.sizes[i] as number
    this.consumed += to - this.head
    this.head = to
    if (this.head === this.lines.length) {
      this.lines = []
      this.sizes = []
      this.times = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.lines.length) {
      // Let go of what was taken without copying on every take.
      this.lines = this.lines.slice(this.head)
      this.sizes = this.sizes.slice(this.head)
      this.times = this.times.slice(this.head)
      this.head = 0
    }
  }
}
