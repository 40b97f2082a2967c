import { classify, type Outcome, type Verdict } from './classify'
import { backoff } from './backoff'
import { BoundedSet } from './bounded-set'
import type { Clock } from './clock'
import type { Emit } from './events'
import type { Config } from './options'
import { PacerBudget } from './pacer-budget'
import { Reporter, shortToken } from './reporter'
import type { RequestBudget } from './request-budget'
import { sanitize } from './sanitize'
import { type DropReason, type Stats, summaryLine } from './stats'
import { truncate } from './truncate'

export const LOG_PATH = '/v1/workflows/activity-log'
export const EVENT_PATH = '/v1/workflows/event'

// First retry waits up to this long; each further one doubles the ceiling.
const RETRY_BASE = 500
const RATE_LIMIT_BASE = 1000

/** What delivery needs of the network: Client, or anything that answers like it. */
export interface Sender {
  post: (path: string, payload: unknown) => Promise<Outcome>
  /** Aborts what is in flight: close() has waited as long as it may. */
  destroy: () => Promise<void>
}

/** One request's worth of text for one token. */
interface Entry {
  state: TokenState
  text: string
  bytes: number
  lines: number
  /** When its first line was queued: eviction drops the oldest first. */
  since: number
  attempts: number
  /** Set for the entry that completes the activity. */
  returnValues: Record<string, unknown> | undefined
  settled: boolean
  waiters: Array<() => void> | undefined
}

/** Everything queued for one event token. Forgotten as soon as it holds nothing. */
interface TokenState {
  token: string
  /** Formatted lines not yet sealed into an entry. */
  pending: string[]
  pendingBytes: number
  pendingSince: number
  flushTimer: unknown
  /** Sealed entries in log order; the head is in flight while `busy`. */
  entries: Entry[]
  /** A request is in flight or a retry is waiting: one at a time per token keeps order. */
  busy: boolean
  retryTimer: unknown
  /** In the round-robin queue of tokens waiting for a request slot. */
  queued: boolean
  /** Its activity was completed through the stream: no more lines are taken. */
  closed: boolean
}

/**
 * Per-token batching and the delivery of entries: ordering, parallelism,
 * pacing, retries, pauses, drops and shutdown. Reading lines never waits for
 * it: `add` only enqueues, and requests go out from timers and answers.
 */
export class Delivery {
  private readonly config: Config
  private readonly sender: Sender
  private readonly clock: Clock
  private readonly reporter: Reporter
  private readonly emit: Emit
  readonly stats: Stats
  /** Request slots: this process's own pacer, or one shared through Redis (issue 12). */
  private readonly budget: RequestBudget
  private readonly tokens = new Map<string, TokenState>()
  /** Round-robin queue of tokens with an entry ready and no request in flight. */
  private runnable: TokenState[] = []
  private runHead = 0
  /** Entries in the order they were sealed, so an overflow drops the oldest first. */
  private fifo: Entry[] = []
  private fifoHead = 0
  /** Tokens with pending lines, oldest first pending line first (a Map keeps insertion order). */
  private readonly pendingOrder = new Map<string, TokenState>()
  private readonly dead: BoundedSet
  private readonly completed: BoundedSet
  private buffered = 0
  private inFlight = 0
  private pauseUntil = 0
  private pauseTimer: unknown = undefined
  private pacingTimer: unknown = undefined
  private rateLimitStreak = 0
  private keyFailure: Verdict | undefined = undefined
  private succeeded = false
  private closing = false
  private deadline = Infinity
  private closed = false
  private readonly dropMode: boolean
  private statsTimer: unknown = undefined
  private statsSeen = -1

  constructor (config: Config, sender: Sender, clock: Clock, reporter: Reporter, emit: Emit, stats: Stats, budget?: RequestBudget) {
    this.config = config
    this.sender = sender
    this.clock = clock
    this.reporter = reporter
    this.emit = emit
    this.stats = stats
    this.dropMode = config.onRateLimit === 'drop'
    this.budget = budget ?? new PacerBudget(config.maxRequestsPerSecond, config.burst, clock.now())
    // Permits or a pause arrived from elsewhere: what waits may go, or must wait longer.
    this.budget.onChange(() => this.pump())
    this.dead = new BoundedSet(config.maxTokens)
    this.completed = new BoundedSet(config.maxTokens)
    if (config.statsInterval > 0) this.armStats()
  }

  /** Counters every statsInterval for long-running apps, only when something happened. */
  private armStats (): void {
    this.statsTimer = this.clock.setTimeout(() => {
      const activity = this.stats.received + this.stats.requests
      if (activity !== this.statsSeen) {
        this.statsSeen = activity
        this.emitStats()
      }
      this.armStats()
    }, this.config.statsInterval)
    // In-process, the counters must not keep the application alive.
    ;(this.statsTimer as { unref?: () => void }).unref?.()
  }

  private emitStats (): void {
    this.emit('bitrix24:stats', { ...this.stats, dropped: { ...this.stats.dropped } })
  }

  /** Bytes of text queued, pending or in flight. */
  get bufferedBytes (): number {
    return this.buffered
  }

  /** Tokens with anything queued. */
  get activeTokens (): number {
    return this.tokens.size
  }

  /** Entries not yet let go of: sealed and not settled, or settled behind one that is not. */
  get trackedEntries (): number {
    return this.fifo.length - this.fifoHead
  }

  /** Queues one formatted line for a token. */
  add (token: string, text: string): void {
    const state = this.accept(token, false)
    if (state === undefined) return
    this.append(state, text)
  }

  /**
   * Queues the line that completes the activity: every earlier line of the
   * token goes first, then this line goes as the event's own log message.
   * Later lines of the token are dropped: Bitrix24 would silently ignore them.
   */
  complete (token: string, text: string, returnValues: Record<string, unknown>): void {
    const state = this.accept(token, true)
    if (state === undefined) return
    this.seal(state)
    this.track(state)
    this.completed.add(token)
    state.closed = true
    const bytes = Buffer.byteLength(text)
    const clean = this.clean(text, bytes)
    this.push(state, clean, 1, returnValues, this.clock.now())
  }

  /**
   * Sealing can overflow the buffer, and an eviction can forget a token whose
   * queue it emptied: the caller goes on with that token, so it is tracked again.
   */
  private track (state: TokenState): void {
    if (this.tokens.get(state.token) !== state) this.tokens.set(state.token, state)
  }

  /** Checks whether lines of a token may be queued; counts them as dropped if not. */
  private accept (token: string, completion: boolean): TokenState | undefined {
    let state = this.tokens.get(token)
    // The common case, a token already queueing and nothing wrong: no further lookups.
    if (state !== undefined && !state.closed && this.keyFailure === undefined && !this.closed &&
      (!this.dropMode || this.clock.now() >= this.pauseUntil)) return state
    let reason: DropReason | undefined
    if (this.keyFailure !== undefined) reason = 'auth'
    else if (this.closed) reason = 'shutdown'
    else if (this.dead.has(token)) reason = 'deadToken'
    else if (this.completed.has(token) || state?.closed === true) reason = 'completed'
    else if (this.dropMode && this.clock.now() < this.pauseUntil) reason = 'rateLimited'
    // A completion is never refused for the token cap: it finishes a workflow.
    if (reason === undefined && state === undefined && !completion && this.tokens.size >= this.config.maxTokens) reason = 'overflow'
    if (reason !== undefined) {
      this.drop(reason, 1, token)
      if (completion) this.completionFailed(token, reason)
      return undefined
    }
    if (state === undefined) {
      state = {
        token,
        pending: [],
        pendingBytes: 0,
        pendingSince: 0,
        flushTimer: undefined,
        entries: [],
        busy: false,
        retryTimer: undefined,
        queued: false,
        closed: false
      }
      this.tokens.set(token, state)
    }
    return state
  }

  private append (state: TokenState, line: string): void {
    const max = this.config.maxEntryBytes
    let text = line
    let bytes = Buffer.byteLength(text)
    if (bytes > max) {
      text = truncate(text, max)
      bytes = Buffer.byteLength(text)
    }
    if (state.pending.length > 0 && state.pendingBytes + 1 + bytes > max) {
      this.seal(state)
      this.track(state)
    }
    // Pending bytes count the newline that will join this line to the one before.
    const added = state.pending.length === 0 ? bytes : bytes + 1
    if (state.pending.length === 0) {
      state.pendingSince = this.clock.now()
      this.pendingOrder.set(state.token, state)
      state.flushTimer = this.clock.setTimeout(() => {
        state.flushTimer = undefined
        this.seal(state)
      }, this.config.flushInterval)
    }
    state.pending.push(text)
    state.pendingBytes += added
    this.buffered += added
    if (this.buffered > this.config.maxBufferedBytes) this.evict()
  }

  /** Turns a token's pending lines into one entry and queues it for sending. */
  private seal (state: TokenState): void {
    if (state.pending.length === 0) return
    if (state.flushTimer !== undefined) {
      this.clock.clearTimeout(state.flushTimer)
      state.flushTimer = undefined
    }
    const lines = state.pending.length
    const joined = lines === 1 ? state.pending[0] as string : state.pending.join('\n')
    const rawBytes = state.pendingBytes
    state.pending = []
    state.pendingBytes = 0
    this.pendingOrder.delete(state.token)
    this.buffered -= rawBytes
    this.push(state, this.clean(joined, rawBytes), lines, undefined, state.pendingSince)
  }

  /** Sanitised and trimmed text of an entry, still within maxEntryBytes. */
  private clean (text: string, bytes: number): { text: string, bytes: number } {
    let out = sanitize(text, this.config.keepNonBmp).trim()
    let outBytes = out === text ? bytes : Buffer.byteLength(out)
    // Neutralising markup adds a few bytes: the rare entry that outgrows the limit is cut.
    if (outBytes > this.config.maxEntryBytes) {
      out = truncate(out, this.config.maxEntryBytes)
      outBytes = Buffer.byteLength(out)
    }
    return { text: out, bytes: outBytes }
  }

  private push (state: TokenState, clean: { text: string, bytes: number }, lines: number, returnValues: Record<string, unknown> | undefined, since: number): void {
    if (clean.text === '' && returnValues === undefined) {
      // Bitrix24 rejects an empty entry; a line that formats to nothing is not worth a request.
      this.stats.skipped += lines
      this.forgetIfIdle(state)
      return
    }
    const entry: Entry = {
      state,
      text: clean.text,
      bytes: clean.bytes,
      lines,
      since,
      attempts: 0,
      returnValues,
      settled: false,
      waiters: undefined
    }
    this.buffered += entry.bytes
    state.entries.push(entry)
    this.fifo.push(entry)
    if (this.buffered > this.config.maxBufferedBytes) this.evict()
    this.schedule(state)
  }

  /** Puts a token with a ready entry and no request in flight into the round-robin queue. */
  private schedule (state: TokenState): void {
    if (state.busy || state.queued || state.entries.length === 0) return
    state.queued = true
    this.runnable.push(state)
    this.pump()
  }

  /** Starts as many requests as concurrency, pauses and pacing allow. */
  private pump (): void {
    while (this.inFlight < this.config.concurrency && this.runHead < this.runnable.length && this.keyFailure === undefined) {
      const now = this.clock.now()
      if (now < this.pauseUntil) {
        this.armPause()
        break
      }
      const state = this.runnable[this.runHead] as TokenState
      const entry = state.entries[0]
      if (entry === undefined || state.busy) {
        // Its entries were dropped or it is already sending: nothing to do for it.
        this.runHead++
        state.queued = false
        continue
      }
      const wait = this.budget.take(now)
      if (wait > 0) {
        this.armPacing(wait)
        break
      }
      this.runHead++
      state.queued = false
      this.send(state, entry)
    }
    if (this.runHead > 1024 && this.runHead * 2 > this.runnable.length) {
      this.runnable = this.runnable.slice(this.runHead)
      this.runHead = 0
    }
  }

  private armPause (): void {
    if (this.pauseTimer !== undefined) return
    this.pauseTimer = this.clock.setTimeout(() => {
      this.pauseTimer = undefined
      this.pump()
    }, this.pauseUntil - this.clock.now())
  }

  private armPacing (wait: number): void {
    if (this.pacingTimer !== undefined) return
    this.pacingTimer = this.clock.setTimeout(() => {
      this.pacingTimer = undefined
      this.pump()
    }, wait)
  }

  private send (state: TokenState, entry: Entry): void {
    state.busy = true
    this.inFlight++
    this.stats.requests++
    const payload = entry.returnValues === undefined
      ? { eventToken: state.token, logMessage: entry.text }
      : entry.text === ''
        ? { eventToken: state.token, returnValues: entry.returnValues }
        : { eventToken: state.token, returnValues: entry.returnValues, logMessage: entry.text }
    this.sender.post(entry.returnValues === undefined ? LOG_PATH : EVENT_PATH, payload)
      .then((outcome) => this.answer(state, entry, outcome))
      .catch((err: unknown) => {
        // A bug of ours must not become an unhandled rejection that kills the worker.
        this.reporter.problem('INTERNAL', `internal error while delivering: ${(err as Error)?.message}`)
      })
  }

  private answer (state: TokenState, entry: Entry, outcome: Outcome): void {
    this.inFlight--
    state.busy = false
    if (entry.settled) {
      // Given up on while in flight (shutdown, key failure): its answer no longer matters.
      this.after(state)
      return
    }
    const now = this.clock.now()
    const verdict = classify(outcome, now)
    if (this.keyFailure !== undefined && verdict.action !== 'ok') {
      // The key failed while this request was in flight: nothing will be sent again.
      this.dropEntry(entry, 'auth', this.keyFailure.code)
      this.after(state)
      return
    }
    if (verdict.warning !== undefined) this.reporter.problem('WARNING', `the server warns: ${verdict.warning}`)
    switch (verdict.action) {
      case 'ok':
        this.rateLimitStreak = 0
        this.succeeded = true
        this.budget.speedUp()
        this.stats.delivered += entry.lines
        if (entry.returnValues === undefined) {
          this.stats.entries++
        } else {
          this.stats.completions++
          this.emit('bitrix24:completed', { token: shortToken(state.token) })
        }
        this.settle(entry)
        break
      case 'rateLimited':
        this.rateLimited(state, entry, verdict, now)
        break
      case 'retry':
        this.retry(state, entry, verdict, now)
        break
      case 'keyFailure':
        this.failKey(verdict)
        break
      case 'tokenFailure':
        this.failToken(state, entry, verdict)
        break
      case 'rejected':
        this.reporter.problem(`REJECTED:${verdict.code}`, `an entry was refused (${this.describe(verdict)}); it is dropped, others go on`)
        this.dropEntry(entry, 'rejected', verdict.code)
        break
    }
    this.after(state)
  }

  /** After an answer: next entry of this token to the back of the queue (round robin), more requests. */
  private after (state: TokenState): void {
    this.schedule(state)
    this.forgetIfIdle(state)
    this.pump()
  }

  private rateLimited (state: TokenState, entry: Entry, verdict: Verdict, now: number): void {
    this.stats.rateLimited++
    // Requests in flight together meet one limit together: slow down once per pause.
    if (now >= this.pauseUntil) {
      this.rateLimitStreak++
      this.budget.slowDown(now)
    }
    // Without a delay from the server, wait at least the second the API asks for.
    const delay = verdict.retryAfter === undefined
      ? Math.max(RATE_LIMIT_BASE, backoff(this.rateLimitStreak, RATE_LIMIT_BASE, this.config.maxRetryDelay, undefined))
      : backoff(this.rateLimitStreak, RATE_LIMIT_BASE, this.config.maxRetryDelay, verdict.retryAfter)
    this.pauseUntil = Math.max(this.pauseUntil, now + delay)
    this.budget.pause(this.pauseUntil)
    this.emit('bitrix24:rateLimited', { code: verdict.code, retryAfter: delay })
    this.reporter.problem('RATE_LIMITED', `${this.describe(verdict)}; sending pauses ${delay} ms (onRateLimit: ${this.config.onRateLimit})`)
    if (this.dropMode) {
      this.dropEntry(entry, 'rateLimited', verdict.code)
      for (const other of [...this.tokens.values()]) this.dropToken(other, 'rateLimited', verdict.code)
    }
    if (this.closing && this.pauseUntil > this.deadline) {
      // The pause outlasts the time left to close: waiting it out would deliver nothing.
      this.abandon()
      return
    }
    this.schedule(state)
    this.armPause()
  }

  private retry (state: TokenState, entry: Entry, verdict: Verdict, now: number): void {
    // A 502 is also how the portal's own rate limit shows: slow down as for a 429.
    if (verdict.status === 502) this.budget.slowDown(now)
    if (verdict.ambiguous && !this.config.retryAmbiguous) {
      this.reporter.problem('AMBIGUOUS', `a request failed after it was sent (${this.describe(verdict)}); retryAmbiguous is off, so the entry is dropped rather than risk writing it twice`)
      this.dropEntry(entry, 'ambiguous', verdict.code)
      return
    }
    entry.attempts++
    if (entry.attempts > this.config.maxRetries) {
      this.reporter.problem(`EXHAUSTED:${verdict.code}`, `an entry failed ${entry.attempts} times (${this.describe(verdict)}); it is dropped`)
      this.dropEntry(entry, 'retriesExhausted', verdict.code)
      return
    }
    const delay = backoff(entry.attempts, RETRY_BASE, this.config.maxRetryDelay, verdict.retryAfter)
    if (this.closing && now + delay > this.deadline) {
      this.dropToken(state, 'shutdown', verdict.code)
      return
    }
    this.stats.retries++
    if (verdict.ambiguous) this.stats.possibleDuplicates++
    this.reporter.problem(`RETRY:${verdict.code}`, `${this.describe(verdict)}; retrying with backoff (at most ${this.config.maxRetries} times per entry)`)
    state.busy = true
    state.retryTimer = this.clock.setTimeout(() => {
      state.retryTimer = undefined
      state.busy = false
      this.after(state)
    }, delay)
  }

  private failKey (verdict: Verdict): void {
    this.keyFailure = verdict
    this.reporter.problem(`KEY:${verdict.code}`, `${this.describe(verdict)}. Nothing more is sent with this key; lines are dropped and counted`)
    this.emit('bitrix24:authError', { code: verdict.code, status: verdict.status, advice: verdict.advice })
    for (const state of [...this.tokens.values()]) this.dropToken(state, 'auth', verdict.code)
  }

  private failToken (state: TokenState, entry: Entry, verdict: Verdict): void {
    this.dead.add(state.token)
    this.reporter.problem('TOKEN:' + verdict.code, `event token ${shortToken(state.token)}: ${this.describe(verdict)}; its lines are dropped, other workflows go on`)
    this.dropEntry(entry, 'deadToken', verdict.code)
    this.dropToken(state, 'deadToken', verdict.code)
    if (!this.succeeded && this.dead.size >= 2) this.scopeHint()
  }

  private scopeHint (): void {
    this.reporter.problem('SCOPE_HINT', 'every event token so far was refused and none was ever accepted: the API key may lack the bizproc scope')
  }

  private describe (verdict: Verdict): string {
    let text = verdict.status === 0 ? `${verdict.code}: ${verdict.advice}` : `HTTP ${verdict.status} ${verdict.code}: ${verdict.advice}`
    if (verdict.hint !== undefined) text += ` (server hint: ${verdict.hint})`
    return text
  }

  private drop (reason: DropReason, lines: number, token: string, code?: string): void {
    if (lines === 0) return
    this.stats.dropped[reason] += lines
    if (reason === 'completed') {
      this.reporter.problem('COMPLETED', `lines were logged for event token ${shortToken(token)} after its activity was completed; Bitrix24 would ignore them, so they are dropped`)
    }
    if (reason === 'overflow') {
      this.reporter.problem('OVERFLOW', `more than maxBufferedBytes (${this.config.maxBufferedBytes}) is waiting to be sent; the oldest lines are dropped`)
    }
    this.emit('bitrix24:drop', { reason, lines, token: shortToken(token), code })
  }

  /** Each one needs a person to finish the activity by hand: named per token, past the stderr budget. */
  private completionFailed (token: string, reason: DropReason, code?: string): void {
    this.reporter.problem(`COMPLETION_FAILED:${token}`, `the activity of event token ${shortToken(token)} could not be completed (${reason}${code === undefined ? '' : ' ' + code}); complete it by hand`, true)
    this.emit('bitrix24:completionFailed', { token: shortToken(token), reason, code })
  }

  private settle (entry: Entry): void {
    entry.settled = true
    this.buffered -= entry.bytes
    const { state } = entry
    const i = state.entries.indexOf(entry)
    if (i !== -1) state.entries.splice(i, 1)
    if (entry.waiters !== undefined) for (const resolve of entry.waiters) resolve()
    // Let go of settled entries at the front, so that delivered text is not kept.
    while (this.fifoHead < this.fifo.length && (this.fifo[this.fifoHead] as Entry).settled) this.fifoHead++
    this.compactFifo()
  }

  private compactFifo (): void {
    if (this.fifoHead === this.fifo.length) {
      this.fifo = []
      this.fifoHead = 0
    } else if (this.fifoHead > 1024 && this.fifoHead * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.fifoHead)
      this.fifoHead = 0
    }
  }

  private dropEntry (entry: Entry, reason: DropReason, code?: string): void {
    if (entry.returnValues !== undefined) this.completionFailed(entry.state.token, reason, code)
    this.settle(entry)
    this.drop(reason, entry.lines, entry.state.token, code)
  }

  private dropPending (state: TokenState, reason: DropReason, code?: string): void {
    if (state.flushTimer !== undefined) {
      this.clock.clearTimeout(state.flushTimer)
      state.flushTimer = undefined
    }
    const lines = state.pending.length
    this.buffered -= state.pendingBytes
    state.pending = []
    state.pendingBytes = 0
    this.pendingOrder.delete(state.token)
    this.drop(reason, lines, state.token, code)
  }

  /** Drops everything queued for a token, except an entry whose request is in flight. */
  private dropToken (state: TokenState, reason: DropReason, code?: string): void {
    this.dropPending(state, reason, code)
    if (state.retryTimer !== undefined) {
      this.clock.clearTimeout(state.retryTimer)
      state.retryTimer = undefined
      state.busy = false
    }
    for (const entry of [...state.entries]) {
      if (state.busy && entry === state.entries[0]) continue
      this.dropEntry(entry, reason, code)
    }
    this.forgetIfIdle(state)
  }

  /** Over maxBufferedBytes: drop the oldest entry not in flight, else the oldest pending lines. */
  private evict (): void {
    while (this.buffered > this.config.maxBufferedBytes) {
      const victim = this.oldestEvictable()
      const pending = this.pendingOrder.values().next().value as TokenState | undefined
      if (victim !== undefined && (pending === undefined || victim.since <= pending.pendingSince)) {
        this.dropEntry(victim, 'overflow')
        this.forgetIfIdle(victim.state)
      } else if (pending !== undefined) {
        this.dropPending(pending, 'overflow')
        this.forgetIfIdle(pending)
      } else {
        // Only entries in flight and completions are left: nothing more may go.
        return
      }
    }
  }

  /** The oldest sealed entry that may be dropped: not in flight, not a completion. */
  private oldestEvictable (): Entry | undefined {
    let victim: Entry | undefined
    let i = this.fifoHead
    for (; i < this.fifo.length; i++) {
      const entry = this.fifo[i] as Entry
      // An entry in flight (or waiting for its retry) keeps its place, and so does a
      // completion: one line that finishes a workflow is worth more than any log line.
      if (entry.settled || entry.returnValues !== undefined || (entry.state.busy && entry.state.entries[0] === entry)) continue
      victim = entry
      break
    }
    // Pack what was looked past (only unsettled entries still count) right before
    // the victim, so the next eviction does not walk over the settled ones again.
    let write = i
    for (let j = i - 1; j >= this.fifoHead; j--) {
      const entry = this.fifo[j] as Entry
      if (!entry.settled) this.fifo[--write] = entry
    }
    this.fifoHead = write
    this.compactFifo()
    return victim
  }

  private forgetIfIdle (state: TokenState): void {
    if (state.busy || state.pending.length > 0 || state.entries.length > 0) return
    if (this.tokens.get(state.token) === state) this.tokens.delete(state.token)
  }

  /** Seals every pending line and resolves once all entries queued now are delivered or given up on. */
  flush (): Promise<void> {
    const waits: Array<Promise<void>> = []
    for (const state of [...this.tokens.values()]) {
      this.seal(state)
      for (const entry of state.entries) {
        waits.push(new Promise<void>((resolve) => {
          (entry.waiters ??= []).push(resolve)
        }))
      }
    }
    return Promise.all(waits).then(() => undefined)
  }

  /**
   * Delivers what is queued within closeTimeout, then gives up on the rest
   * (counted as shutdown drops) and writes the summary line synchronously.
   */
  async close (): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.deadline = this.clock.now() + this.config.closeTimeout
    const timer = this.clock.setTimeout(() => this.abandon(), this.config.closeTimeout)
    if (Math.max(this.pauseUntil, this.budget.pausedUntil()) > this.deadline) this.abandon()
    await this.flush()
    this.clock.clearTimeout(timer)
    this.closed = true
    for (const t of [this.pauseTimer, this.pacingTimer, this.statsTimer]) if (t !== undefined) this.clock.clearTimeout(t)
    if (!this.succeeded && this.dead.size >= 1) this.scopeHint()
    this.emitStats()
    const summary = summaryLine(this.stats)
    if (summary !== '') {
      const suppressed = this.reporter.suppressed > 0 ? `; ${this.reporter.suppressed} further problem lines were suppressed` : ''
      this.reporter.always(`closed: ${summary}${suppressed}`)
    }
    // Aborts whatever is still in flight after the deadline.
    await this.sender.destroy()
    await this.budget.close()
  }

  /** The deadline: every entry still queued, pending or in flight is dropped as `shutdown`. */
  private abandon (): void {
    for (const state of [...this.tokens.values()]) {
      this.dropToken(state, 'shutdown')
      const head = state.entries[0]
      if (head !== undefined) this.dropEntry(head, 'shutdown')
    }
  }
}
