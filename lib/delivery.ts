import { classify, type Outcome, type Verdict } from './classify'
import { BoundedSet } from './bounded-set'
import { ChunkPool } from './chunk-pool'
import type { Clock } from './clock'
import { Drops } from './drops'
import type { Emit } from './events'
import { MemoryBudget } from './memory-budget'
import type { Config } from './options'
import { decide, type Decision } from './policy'
import { oneLine, Reporter, shortToken } from './reporter'
import { HARD_ENTRY_BYTES, RowBudget } from './row-budget'
import { LocalBudget, type RequestBudget } from './request-budget'
import { createBudget } from './shared-budget'
import { sanitize } from './sanitize'
import { Scheduler } from './scheduler'
import type { SpoolHooks } from './spool'
import { count, type DropReason, type Stats, summaryLine } from './stats'
import { omittedLine } from './format'
import { type Entry, TokenQueue } from './token-queue'
import { truncate } from './truncate'

export const LOG_PATH = '/v1/workflows/activity-log'
export const EVENT_PATH = '/v1/workflows/event'

// A ready token that waits this long for a request slot means the request
// budget cannot keep up with the log rate: say so once.
export const BACKLOG_AFTER = 10_000

// Room an entry keeps for the marker line of lines left out ("… 1,234,567 lines omitted …").
const MARKER_BYTES = 48

/** What delivery needs of the network: Client, or anything that answers like it. */
export interface Sender {
  post: (path: string, payload: unknown) => Promise<Outcome>
  /** Aborts what is in flight: close() has waited as long as it may. */
  destroy: () => Promise<void>
}

/**
 * Delivery of log lines as workflow log entries. It wires the parts and
 * carries out their decisions: lines wait in a TokenQueue per token, the
 * Scheduler grants request slots, an entry is formed from a token's oldest
 * lines only when its request can go, `decide` says what an answer means,
 * the MemoryBudget bounds what is queued, and Drops counts what is given up.
 * Reading lines never waits for any of it: `add` only enqueues.
 */
export class Delivery {
  private readonly config: Config
  private readonly sender: Sender
  private readonly clock: Clock
  private readonly reporter: Reporter
  private readonly emit: Emit
  readonly stats: Stats
  private readonly budget: RequestBudget
  private readonly scheduler: Scheduler
  private readonly memory: MemoryBudget
  private readonly drops: Drops
  private readonly tokens = new Map<string, TokenQueue>()
  /** The buffers the queues keep full batches of lines in, reused: as many as the memory cap can fill. */
  private readonly chunks: ChunkPool
  private readonly dead: BoundedSet
  private readonly completed: BoundedSet
  /** Each workflow's rows (maxRows): the one place per-token row state lives. */
  readonly rows: RowBudget
  /** The largest entry when rows run short. */
  private readonly hardBytes: number
  private readonly dropMode: boolean
  private rateLimitStreak = 0
  private keyFailure: Verdict | undefined = undefined
  private succeeded = false
  private closing = false
  private deadline = Infinity
  private closed = false
  private backlogReported = false
  private statsTimer: unknown = undefined
  private statsSeen = -1
  /** The disk spool (spoolDir): told what is queued, sent and settled. */
  private readonly spool: SpoolHooks | undefined

  constructor (config: Config, sender: Sender, clock: Clock, reporter: Reporter, emit: Emit, stats: Stats, budget?: RequestBudget, spool?: SpoolHooks) {
    this.chunks = new ChunkPool(config.maxEntryBytes, Math.ceil(config.maxBufferedBytes / config.maxEntryBytes))
    this.config = config
    this.spool = spool
    this.sender = sender
    this.clock = clock
    this.reporter = reporter
    this.emit = emit
    this.stats = stats
    this.dropMode = config.onRateLimit === 'drop'
    // This process's own pacer and pause, or, with redisUrl, one bucket shared by every process on the key.
    this.budget = budget ?? createBudget(config, clock, reporter, new LocalBudget(config.maxRequestsPerSecond, config.burst, clock, config.maxRetryDelay))
    this.scheduler = new Scheduler(config.concurrency, this.budget, clock, (queue) => this.dispatch(queue))
    // A flood into a stalled server evicts an entry's worth at a time (at most 1/64 of the cap).
    this.memory = new MemoryBudget(config.maxBufferedBytes, Math.min(config.maxEntryBytes, Math.floor(config.maxBufferedBytes / 64)))
    this.drops = new Drops(stats, reporter, emit, config.maxBufferedBytes)
    this.dead = new BoundedSet(config.maxTokens)
    this.completed = new BoundedSet(config.maxTokens)
    this.rows = new RowBudget(config.maxRows, config.maxTokens)
    this.hardBytes = Math.max(config.maxEntryBytes, HARD_ENTRY_BYTES)
    if (config.statsInterval > 0) this.armStats()
  }

  /** Counters every statsInterval for long-running apps, only when something happened. */
  private armStats (): void {
    this.statsTimer = this.clock.setTimeout(() => {
      const activity = this.stats.received + this.stats.requests + this.stats.spooled
      if (activity !== this.statsSeen) {
        this.statsSeen = activity
        this.emitStats()
      }
      this.armStats()
    }, this.config.statsInterval)
    // In-process, the counters must not keep the application alive.
    this.clock.unref(this.statsTimer)
  }

  private emitStats (): void {
    const now = this.clock.now()
    const oldest = this.memory.oldestSince(now)
    this.stats.waitingTokens = this.scheduler.waiting
    this.stats.oldestWaitingMs = now - oldest
    this.emit('bitrix24:stats', { ...this.stats, dropped: { ...this.stats.dropped }, failedCompletions: [...this.stats.failedCompletions] })
  }

  /** Bytes held for queued text, entries not settled, and queued tokens. */
  get bufferedBytes (): number {
    return this.memory.bytes
  }

  /** Queues one formatted line for a token. */
  add (token: string, text: string): void {
    const queue = this.accept(token)
    if (queue === undefined) return
    const max = this.config.maxEntryBytes
    let bytes = Buffer.byteLength(text)
    if (bytes > max) {
      text = truncate(text, max)
      bytes = Buffer.byteLength(text)
    }
    const first = queue.pendingLines === 0
    const now = this.clock.now()
    queue.push(text, bytes, now)
    this.spool?.line(queue, text, bytes, now)
    // Each line is counted with the newline that will join it to the next.
    this.memory.bytes += bytes + 1
    if (first) this.memory.pending(queue)
    if (queue.phase === 'collecting') {
      // While closing nothing waits for flushInterval: close() waits for this line too.
      if (queue.consumed < queue.forceUntil || this.closing) this.makeReady(queue)
      else if (queue.timer === undefined || queue.full) this.schedule(queue, now)
    }
    if (this.memory.over) this.evict()
  }

  /**
   * Queues the line that completes the activity: every earlier line of the
   * token goes first, then this line goes as the event's own request.
   * Later lines of the token are dropped: Bitrix24 would silently ignore them.
   */
  complete (token: string, text: string, returnValues: Record<string, unknown>): void {
    const max = this.config.maxEntryBytes
    let bytes = Buffer.byteLength(text)
    if (bytes > max) {
      text = truncate(text, max)
      bytes = Buffer.byteLength(text)
    }
    const queue = this.accept(token, bytes)
    if (queue === undefined) return
    this.completed.add(token)
    const now = this.clock.now()
    queue.complete(text, bytes, returnValues, now)
    this.spool?.completion(queue, text, bytes, returnValues, now)
    this.memory.bytes += bytes
    // The workflow waits for it: the token is ready now, ahead of tokens that only log.
    this.makeReady(queue)
    this.scheduler.promote(queue)
    if (this.memory.over) this.evict()
  }

  /** Rows a workflow used before a restart (its spool kept them): its budget goes on from there. */
  restoreRows (token: string, state: unknown): void {
    const rows = this.rows.restore(token, state)
    // Kept again at once: the ended process's spool file goes once this one holds what it held.
    if (rows !== undefined) this.spool?.setState(token, rows)
  }

  /** A line the router gave up on before it could be queued: counted, emitted and explained like every drop. */
  discard (token: string, reason: DropReason): void {
    this.drops.lines(reason, 1, token)
  }

  /** Checks whether lines of a token may be queued; counts them as dropped if not. `completion`: the bytes of a completing line. */
  private accept (token: string, completion?: number): TokenQueue | undefined {
    let queue = this.tokens.get(token)
    // The common case, a token already queueing and nothing wrong: no further lookups.
    if (queue !== undefined && !queue.closed && this.keyFailure === undefined && !this.closed && !this.dropMode) return queue
    let reason: DropReason | undefined
    if (this.keyFailure !== undefined) reason = 'auth'
    else if (this.closed) reason = 'shutdown'
    else if (this.dead.has(token)) reason = 'deadToken'
    else if (this.completed.has(token) || queue?.closed === true) reason = 'completed'
    else if (this.dropMode && this.clock.now() < this.budget.pausedUntil()) reason = 'rateLimited'
    if (reason === undefined) {
      // A completion finishes a workflow: the caps hold it back only at twice their size, so
      // that a flood of completions (each for a new token) still cannot grow without bound.
      const over = completion === undefined ? 1 : 2
      if ((queue === undefined && this.tokens.size >= over * this.config.maxTokens) ||
        (completion !== undefined && this.memory.bytes + completion > over * this.config.maxBufferedBytes)) reason = 'overflow'
    }
    if (reason !== undefined) {
      this.drops.lines(reason, 1, token)
      // A second completion of a completed activity failed nothing: the first one stands.
      if (completion !== undefined && reason !== 'completed') this.drops.completionFailed(token, reason, undefined)
      return undefined
    }
    if (queue === undefined) {
      queue = new TokenQueue(token, this.config.maxEntryBytes, this.chunks)
      if (this.rows.on) queue.rows = this.rows.of(token, this.clock.now())
      this.tokens.set(token, queue)
      // Tokens come from outside and may be long: they count against the memory cap too.
      this.memory.bytes += token.length
    }
    return queue
  }

  private armFlush (queue: TokenQueue, ms: number): void {
    queue.timerAt = this.clock.now() + ms
    queue.timer = this.clock.setTimeout(() => {
      queue.timer = undefined
      this.makeReady(queue)
    }, ms)
  }

  /** A collecting token with something to send joins the scheduler's waiting line. */
  private makeReady (queue: TokenQueue): void {
    if (queue.phase !== 'collecting' || queue.idle) return
    if (queue.timer !== undefined) {
      this.clock.clearTimeout(queue.timer)
      queue.timer = undefined
    }
    this.scheduler.ready(queue)
    if (!this.backlogReported && !this.closing) this.checkBacklog()
  }

  /** After a request of the token ended: ready again at once, later, or forgotten. */
  private review (queue: TokenQueue): void {
    if (queue.phase !== 'collecting') return
    if (!queue.hasWork) {
      this.forgetIfIdle(queue)
      return
    }
    if (queue.completing || queue.consumed < queue.forceUntil || this.closing) this.makeReady(queue)
    else this.schedule(queue)
  }

  /**
   * A collecting token with lines and nothing forcing it: ready now, or a timer
   * for when it may go: flushInterval after its oldest pending line (at once
   * when that fills an entry), and, with maxRows, not before its next row is due.
   * No timer once its planned rows are spent: the completion, flush() or close() take its lines.
   */
  private schedule (queue: TokenQueue, now = this.clock.now()): void {
    let at = queue.full ? now : queue.headSince + this.config.flushInterval
    const rows = queue.rows
    if (rows !== undefined) at = Math.max(at, rows.next)
    if (at <= now) {
      this.makeReady(queue)
    } else if (at !== Infinity) {
      // A flood of lines into a full entry that must wait for its row finds the timer set already.
      if (queue.timer !== undefined) {
        if (queue.timerAt === at) return
        this.clock.clearTimeout(queue.timer)
      }
      this.armFlush(queue, at - now)
    }
  }

  private checkBacklog (): void {
    const since = this.scheduler.oldestWaiting
    const now = this.clock.now()
    if (since === undefined || now - since <= BACKLOG_AFTER) return
    const waited = Math.round((now - this.memory.oldestSince(since)) / 1000)
    // The why (a portal drains about 2 requests/s) is in the README, under this line.
    if (this.reporter.problem('BACKLOG', `the request budget cannot keep up: ${this.scheduler.waiting} workflows wait for a request slot, the oldest line ${waited} s; ` +
      'log fewer lines per workflow, or overflow drops follow')) {
      this.backlogReported = true
      this.emitStats()
    }
  }

  /**
   * The scheduler granted a request slot: the token's entry is formed now from
   * its oldest lines (or is the one already attempted, resent as it was).
   */
  private dispatch (queue: TokenQueue): boolean {
    if (queue.current !== undefined) {
      this.send(queue, queue.current)
      return true
    }
    for (;;) {
      const first = queue.consumed + 1
      const raw = this.form(queue)
      if (raw === undefined) {
        this.memory.taken(queue)
        this.forgetIfIdle(queue)
        return false
      }
      const clean = this.clean(raw.text, raw.bytes, raw.cap)
      if (clean.text === '' && raw.returnValues === undefined) {
        // Bitrix24 rejects an empty entry; lines that format to nothing are not worth a request.
        this.stats.skipped += raw.lines
        this.spool?.settled(queue, first, queue.consumed - first + 1)
        queue.finish(raw.lines)
        continue
      }
      const entry: Entry = {
        first,
        // Lines left out between its own (omitted) were consumed with them: the spool settles them together.
        span: queue.consumed - first + 1,
        text: clean.text,
        bytes: clean.bytes,
        lines: raw.lines,
        since: raw.since,
        attempts: 0,
        returnValues: raw.returnValues,
        settled: false
      }
      this.memory.bytes += entry.bytes
      this.memory.taken(queue)
      queue.current = entry
      this.send(queue, entry)
      return true
    }
  }

  /**
   * The next entry of a token, taken out of its queue: its oldest lines, or the
   * completion carrying the lines that fit its message (finishing costs one
   * request and one row). With maxRows, entries grow up to the hard cap when
   * the next row could not follow within flushInterval, and when even the
   * rows left cannot carry the pending text, the lines between the entry's
   * and the newest ones are left out, counted, and named by a marker line.
   */
  private form (queue: TokenQueue): { text: string, bytes: number, lines: number, since: number, returnValues: Record<string, unknown> | undefined, cap: number } | undefined {
    const now = this.clock.now()
    const rows = queue.rows
    const ordinary = this.config.maxEntryBytes
    const hard = this.hardBytes
    // Rows left for log entries; Infinity without a budget.
    const left = rows === undefined ? Infinity : this.rows.left(rows)
    const joined = queue.joinedBytes
    const completion = queue.completionBytes
    if (completion !== -1 && joined > 0) {
      const cap = rows === undefined ? ordinary : hard
      // Past its rows the completion carries what it can, the rest left out; else the lines that
      // outgrow its message go first as a log entry (at once: the workflow waits).
      if (joined + 1 + completion <= cap || left <= 0) return this.carry(queue, Math.max(0, cap - completion - 1), cap)
    }
    if (joined === 0) {
      const c = queue.takeCompletion()
      if (c === undefined) return undefined
      this.memory.bytes -= c.bytes
      return { ...c, cap: ordinary }
    }
    let cap = ordinary
    // Bytes that rows right after this one will carry. Rows that come by the
    // schedule carry their own new lines, so a backlog only grows: past what
    // this entry holds, the middle is left out now (later 0), and every line
    // sent goes with the first row after it. A completion, flush() or close()
    // sends its rows at once: then the token's rows left (and about half of the
    // completion's message) carry the rest.
    let later = Infinity
    if (rows !== undefined) {
      this.rows.wrote(rows, now)
      // Once per request: the spool keeps the rows used, so that a restart continues the budget.
      this.spool?.setState(queue.token, rows)
      if (queue.completing || queue.consumed < queue.forceUntil || this.closing) {
        cap = hard
        later = Math.max(0, left - 1) * hard + (queue.completing ? hard / 2 : 0)
      } else if (rows.next - now > this.config.flushInterval) {
        // Rows run short: the entry grows rather than the rows.
        cap = hard
        later = 0
      }
      if (joined > cap + later) return { ...this.omitting(queue, cap, later), returnValues: undefined, cap }
    }
    const raw = queue.take(cap) as { text: string, bytes: number, lines: number, since: number }
    this.memory.bytes -= raw.bytes + 1
    return { ...raw, returnValues: undefined, cap }
  }

  /** The completion with the token's pending lines in front of its text, up to `room` bytes of lines. */
  private carry (queue: TokenQueue, room: number, cap: number): { text: string, bytes: number, lines: number, since: number, returnValues: Record<string, unknown>, cap: number } {
    const lines = queue.joinedBytes <= room ? this.takeAll(queue, room) : this.omitting(queue, room, 0)
    const c = queue.takeCompletion() as { text: string, bytes: number, returnValues: Record<string, unknown> }
    this.memory.bytes -= c.bytes
    return { text: lines.text + '\n' + c.text, bytes: lines.bytes + 1 + c.bytes, lines: lines.lines + 1, since: lines.since, returnValues: c.returnValues, cap }
  }

  private takeAll (queue: TokenQueue, room: number): { text: string, bytes: number, lines: number, since: number } {
    const raw = queue.take(room) as { text: string, bytes: number, lines: number, since: number }
    this.memory.bytes -= raw.bytes + 1
    return raw
  }

  /**
   * Keeps the beginning and the newest lines: this entry takes the oldest lines
   * (up to `room`), `later` bytes of the newest stay for later rows, and what
   * is between is left out, counted under `omitted` (with its drop event), and
   * named by a marker line in its place. With no later row (`later` 0) the
   * newest lines share this entry: half of `room` for the oldest, the rest for
   * the newest. A line is never split: whole batches go or stay.
   */
  private omitting (queue: TokenQueue, room: number, later: number): { text: string, bytes: number, lines: number, since: number } {
    const since = queue.headSince
    const headRoom = later > 0 ? room - MARKER_BYTES : Math.floor((room - MARKER_BYTES) / 2)
    let text = ''
    let bytes = 0
    let lines = 0
    if (queue.headBytes <= headRoom) {
      const head = this.takeAll(queue, headRoom)
      text = head.text + '\n'
      bytes = head.bytes
      lines = head.lines
    }
    const gone = queue.omit(later > 0 ? later : Math.max(0, room - MARKER_BYTES - bytes - 1))
    this.memory.bytes -= gone.bytes
    queue.finish(gone.lines)
    // Left out for good, even if the entry around them is kept in the spool at shutdown.
    this.spool?.settled(queue, queue.consumed - gone.lines + 1, gone.lines)
    this.drops.lines('omitted', gone.lines, queue.token)
    text += omittedLine(gone.lines)
    if (later === 0 && queue.joinedBytes > 0) {
      const tail = this.takeAll(queue, room)
      text += '\n' + tail.text
      lines += tail.lines
    }
    bytes = Buffer.byteLength(text)
    return { text, bytes, lines, since }
  }

  /** Sanitised and trimmed text of an entry, still within its cap (maxEntryBytes, or more when rows run short). */
  private clean (text: string, bytes: number, cap: number): { text: string, bytes: number } {
    let out = sanitize(text, this.config.keepNonBmp).trim()
    let outBytes = out === text ? bytes : Buffer.byteLength(out)
    // Neutralising markup adds a few bytes: the rare entry that outgrows the limit is cut.
    if (outBytes > cap) {
      out = truncate(out, cap)
      outBytes = Buffer.byteLength(out)
    }
    return { text: out, bytes: outBytes }
  }

  private send (queue: TokenQueue, entry: Entry): void {
    queue.phase = 'sending'
    this.stats.requests++
    this.spool?.sent(queue, entry.first + entry.span - 1)
    const payload = entry.returnValues === undefined
      ? { eventToken: queue.token, logMessage: entry.text }
      : entry.text === ''
        ? { eventToken: queue.token, returnValues: entry.returnValues }
        : { eventToken: queue.token, returnValues: entry.returnValues, logMessage: entry.text }
    this.sender.post(entry.returnValues === undefined ? LOG_PATH : EVENT_PATH, payload)
      .then((outcome) => this.answer(queue, entry, outcome))
      .catch((err: unknown) => {
        // A bug of ours must not become an unhandled rejection that kills the worker.
        this.reporter.problem('INTERNAL', `internal error while delivering: ${(err as Error)?.message}`)
      })
  }

  private answer (queue: TokenQueue, entry: Entry, outcome: Outcome): void {
    queue.phase = 'collecting'
    if (!entry.settled) this.carryOut(queue, entry, outcome)
    // Else it was given up on while in flight (shutdown, key failure): its answer no longer matters.
    this.review(queue)
    this.scheduler.done()
  }

  private carryOut (queue: TokenQueue, entry: Entry, outcome: Outcome): void {
    const now = this.clock.now()
    const verdict = classify(outcome, now)
    if (verdict.rateLimit !== undefined) this.budget.observe(verdict.rateLimit.limit, verdict.rateLimit.remaining, verdict.rateLimit.resetAt)
    if (this.keyFailure !== undefined && verdict.action !== 'ok') {
      // The key failed while this request was in flight: nothing will be sent again.
      this.dropEntry(queue, entry, 'auth', this.keyFailure.code)
      return
    }
    if (verdict.warning !== undefined) this.reporter.problem('WARNING', `the server warns: ${verdict.warning}`)
    const decision = decide(verdict, {
      now,
      attempts: entry.attempts,
      rateLimitStreak: this.rateLimitStreak,
      paused: now < this.budget.pausedUntil(),
      deadline: this.deadline,
      maxRetries: this.config.maxRetries,
      maxRetryDelay: this.config.maxRetryDelay,
      retryAmbiguous: this.config.retryAmbiguous,
      dropOnRateLimit: this.dropMode
    })
    switch (decision.kind) {
      case 'delivered':
        this.rateLimitStreak = 0
        this.succeeded = true
        this.budget.speedUp()
        this.stats.delivered += entry.lines
        if (entry.text !== '') this.stats.rows++
        if (entry.returnValues === undefined) {
          this.stats.entries++
        } else {
          this.stats.completions++
          this.emit('bitrix24:completed', { token: queue.token })
        }
        this.settle(queue, entry)
        break
      case 'pause':
        this.pause(queue, entry, verdict, decision, now)
        break
      case 'retry':
        this.retry(queue, entry, verdict, decision)
        break
      case 'drop':
        this.giveUp(queue, entry, verdict, decision)
        break
      case 'keyFailure':
        this.failKey(verdict)
        break
      case 'tokenFailure':
        this.failToken(queue, entry, verdict)
        break
    }
  }

  private pause (queue: TokenQueue, entry: Entry, verdict: Verdict, decision: Decision & { kind: 'pause' }, now: number): void {
    this.stats.rateLimited++
    if (decision.slowDown) {
      this.rateLimitStreak++
      this.budget.slowDown(now)
    }
    this.budget.pause(decision.until)
    this.emit('bitrix24:rateLimited', { code: verdict.code, retryAfter: decision.delay })
    this.reporter.problem('RATE_LIMITED', `${this.describe(verdict)}; sending pauses ${decision.delay} ms (onRateLimit: ${this.config.onRateLimit})`)
    if (decision.drop) {
      this.dropEntry(queue, entry, 'rateLimited', verdict.code)
      for (const other of [...this.tokens.values()]) this.dropToken(other, 'rateLimited', verdict.code)
      return
    }
    if (this.closing && this.budget.pausedUntil() > this.deadline) {
      // The pause outlasts the time left to close: waiting it out would deliver nothing.
      this.abandon()
      return
    }
    // The entry was not taken in: it goes again, unchanged, when the pause ends.
    this.scheduler.ready(queue)
  }

  private retry (queue: TokenQueue, entry: Entry, verdict: Verdict, decision: Decision & { kind: 'retry' }): void {
    if (decision.slowDown) this.budget.slowDown(this.clock.now())
    entry.attempts++
    this.stats.retries++
    if (decision.possibleDuplicate) this.stats.possibleDuplicates++
    this.reporter.problem(`RETRY:${verdict.code}`, `${this.describe(verdict)}; retrying (at most ${count(this.config.maxRetries, 'time', 'times')} per entry)`)
    queue.phase = 'retryWait'
    queue.timer = this.clock.setTimeout(() => {
      queue.timer = undefined
      this.scheduler.ready(queue)
    }, decision.delay)
  }

  private giveUp (queue: TokenQueue, entry: Entry, verdict: Verdict, decision: Decision & { kind: 'drop' }): void {
    if (decision.slowDown) this.budget.slowDown(this.clock.now())
    if (decision.reason === 'ambiguous') {
      this.reporter.problem('AMBIGUOUS', `a request failed after it was sent (${this.describe(verdict)}); retryAmbiguous is off, so the entry is dropped rather than risk writing it twice`)
    } else if (decision.reason === 'retriesExhausted') {
      this.reporter.problem(`EXHAUSTED:${verdict.code}`, `an entry failed ${entry.attempts + 1} times (${this.describe(verdict)}); it is dropped`)
    } else if (decision.reason === 'rejected') {
      this.reporter.problem(`REJECTED:${verdict.code}`, `event token ${shortToken(queue.token)}: ${this.describe(verdict)}; the entry is dropped${this.serverSays(verdict, true)}`)
    }
    this.dropEntry(queue, entry, decision.reason, verdict.code)
    if (decision.wholeToken) this.dropToken(queue, decision.reason, verdict.code)
  }

  private failKey (verdict: Verdict): void {
    this.keyFailure = verdict
    this.scheduler.stop()
    this.reporter.problem(`KEY:${verdict.code}`, `${this.describe(verdict)}; nothing more is sent with this key${this.serverSays(verdict)}`)
    this.emit('bitrix24:authError', { code: verdict.code, status: verdict.status, advice: verdict.advice })
    for (const queue of [...this.tokens.values()]) this.dropToken(queue, 'auth', verdict.code)
  }

  private failToken (queue: TokenQueue, entry: Entry, verdict: Verdict): void {
    this.dead.add(queue.token)
    this.reporter.problem('TOKEN:' + verdict.code, `event token ${shortToken(queue.token)}: ${this.describe(verdict)}; its lines are dropped, other workflows go on${this.serverSays(verdict)}`)
    this.dropEntry(queue, entry, 'deadToken', verdict.code)
    this.dropToken(queue, 'deadToken', verdict.code)
    if (!this.succeeded && this.dead.size >= 2) this.scopeHint()
  }

  private scopeHint (): void {
    this.reporter.problem('SCOPE_HINT', 'every event token so far was refused and none was ever accepted: the API key may lack the bizproc scope')
  }

  private describe (verdict: Verdict): string {
    return verdict.status === 0 ? `${verdict.code}: ${verdict.advice}` : `HTTP ${verdict.status} ${verdict.code}: ${verdict.advice}`
  }

  /**
   * What the server said, last in a line so that the 200-character cap of a
   * stderr line cuts it rather than the fix: its hint, and for a refused entry
   * its message (a 422 says there why Bitrix24 refused it). Cleaned and capped.
   */
  private serverSays (verdict: Verdict, withMessage = false): string {
    const said = [
      withMessage && verdict.message !== undefined ? `server message: ${oneLine(verdict.message, 100)}` : undefined,
      verdict.hint === undefined ? undefined : `server hint: ${oneLine(verdict.hint, 100)}`
    ].filter((text) => text !== undefined)
    return said.length === 0 ? '' : ` (${said.join('; ')})`
  }

  /** The attempted entry is done with: delivered or given up on. */
  private settle (queue: TokenQueue, entry: Entry, kept = false): void {
    // Lines given up on at shutdown stay in the spool: the next start delivers them.
    if (!kept) this.spool?.settled(queue, entry.first, entry.span)
    entry.settled = true
    this.memory.bytes -= entry.bytes
    if (queue.current === entry) queue.current = undefined
    queue.finish(entry.lines)
    // Its workflow writes no more rows; a later line is dropped as `completed` before it could need them.
    if (entry.returnValues !== undefined) {
      this.rows.forget(queue.token)
      // Kept in the spool, the completion goes again at the next start: its rows stay with it.
      if (!kept) this.spool?.setState(queue.token, undefined)
    }
  }

  private dropEntry (queue: TokenQueue, entry: Entry, reason: DropReason, code?: string, unknown = false): void {
    const kept = this.kept(reason)
    if (entry.returnValues !== undefined) this.drops.completionFailed(queue.token, reason, code, unknown, kept)
    this.settle(queue, entry, reason === 'shutdown')
    // In flight at the deadline, it may have arrived: counted apart, never as dropped.
    if (unknown) this.stats.unknown += entry.lines
    else this.drops.lines(reason, entry.lines, queue.token, code)
  }

  /** Whether lines given up on for `reason` stay in the disk spool for the next start. */
  private kept (reason: DropReason): boolean {
    return reason === 'shutdown' && this.spool?.active === true
  }

  /** Drops what a token has not yet sent: its pending lines and its completion. */
  private dropPending (queue: TokenQueue, reason: DropReason, code?: string): void {
    if (queue.current === undefined) this.scheduler.remove(queue)
    const before = queue.consumed
    const gone = queue.dropAll()
    if (reason !== 'shutdown') this.spool?.settled(queue, before + 1, queue.consumed - before)
    this.memory.bytes -= gone.bytes + gone.lines
    this.memory.taken(queue)
    let lines = gone.lines
    if (gone.completionBytes !== -1) {
      this.memory.bytes -= gone.completionBytes
      this.drops.completionFailed(queue.token, reason, code, false, this.kept(reason))
      lines++
    }
    queue.finish(lines)
    this.drops.lines(reason, lines, queue.token, code)
  }

  /** Drops everything queued for a token, except an entry whose request is in flight. */
  private dropToken (queue: TokenQueue, reason: DropReason, code?: string): void {
    this.dropPending(queue, reason, code)
    const current = queue.current
    if (current !== undefined && queue.phase !== 'sending') {
      this.scheduler.remove(queue)
      this.dropEntry(queue, current, reason, code)
    }
    this.forgetIfIdle(queue)
  }

  /** Over maxBufferedBytes: the memory budget picks the lines; they are counted here. */
  private evict (): void {
    this.memory.evict(this.evicted)
  }

  private readonly evicted = (queue: TokenQueue, lines: number): void => {
    this.spool?.settled(queue, queue.consumed - lines + 1, lines)
    queue.finish(lines)
    this.drops.lines('overflow', lines, queue.token)
    this.forgetIfIdle(queue)
  }

  private forgetIfIdle (queue: TokenQueue): void {
    if (!queue.idle || queue.phase === 'sending' || this.tokens.get(queue.token) !== queue) return
    this.scheduler.remove(queue)
    if (queue.timer !== undefined) {
      this.clock.clearTimeout(queue.timer)
      queue.timer = undefined
    }
    this.tokens.delete(queue.token)
    this.memory.bytes -= queue.token.length
  }

  /**
   * Makes every token with queued lines ready and resolves once what was
   * queued now is delivered or given up on. Meanwhile client pacing holds
   * nothing back: only the server's own pauses do.
   */
  flush (): Promise<void> {
    const waits: Array<Promise<void>> = []
    for (const queue of this.tokens.values()) {
      queue.forceUntil = queue.pushed
      this.makeReady(queue)
      waits.push(queue.settled())
    }
    if (waits.length === 0) return Promise.resolve()
    this.scheduler.bypassPacing(true)
    return Promise.all(waits).then(() => { this.scheduler.bypassPacing(false) })
  }

  /**
   * Delivers what is queued within closeTimeout, then gives up on the rest
   * (counted as shutdown drops) and writes the summary line synchronously.
   */
  async close (): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.deadline = this.clock.now() + this.config.closeTimeout
    // An exiting process has no later requests to protect: from now on only the server paces.
    this.scheduler.bypassPacing(true)
    const timer = this.clock.setTimeout(() => this.abandon(), this.config.closeTimeout)
    if (this.budget.pausedUntil() > this.deadline) this.abandon()
    // Lines that came while it waited are delivered too: until the deadline the server would take them.
    do {
      await this.flush()
    } while (this.unsettled())
    this.clock.clearTimeout(timer)
    this.closed = true
    this.scheduler.stop()
    if (this.statsTimer !== undefined) this.clock.clearTimeout(this.statsTimer)
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

  /** Whether any token has lines not yet delivered or given up on. */
  private unsettled (): boolean {
    for (const queue of this.tokens.values()) if (queue.finished < queue.pushed) return true
    return false
  }

  /**
   * The deadline: everything still queued or waiting is dropped as `shutdown`, and so is what comes
   * later; what is in flight is of unknown outcome.
   */
  private abandon (): void {
    this.closed = true
    for (const queue of [...this.tokens.values()]) {
      const current = queue.current
      // Its answer may still come, but close() will not wait for it: the outcome is unknown.
      if (current !== undefined && queue.phase === 'sending') this.dropEntry(queue, current, 'shutdown', undefined, true)
      this.dropToken(queue, 'shutdown')
    }
  }
}
