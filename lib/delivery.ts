import { Answers } from './answers'
import { BoundedSet } from './bounded-set'
import type { Outcome } from './classify'
import type { Clock } from './clock'
import { Drops } from './drops'
import { EntryFormer } from './entry-former'
import type { Emit } from './events'
import type { Config } from './options'
import { outlasts } from './policy'
import { Readiness } from './readiness'
import { LocalBudget, type RequestBudget } from './request-budget'
import type { Reporter } from './reporter'
import { RowBudget } from './row-budget'
import { Scheduler } from './scheduler'
import type { SpoolHooks } from './spool'
import { type DropReason, type Stats, summaryLine } from './stats'
import { StatsTimer } from './stats-timer'
import type { Entry, TokenQueue } from './token-queue'
import { TokenTable } from './token-table'
import { truncate } from './truncate'

export const LOG_PATH = '/v1/workflows/activity-log'
export const EVENT_PATH = '/v1/workflows/event'

/** What delivery needs of the network: Client, or anything that answers like it. */
export interface Sender {
  post: (path: string, payload: unknown) => Promise<Outcome>
  /** Aborts what is in flight: close() has waited as long as it may. */
  destroy: () => Promise<void>
}

/**
 * Delivery of log lines as workflow log entries: a coordinator of the parts.
 * Lines wait in a TokenQueue per token (the TokenTable holds them and is the one
 * path by which they leave), Readiness says when a token joins the waiting line,
 * the Scheduler grants request slots, the EntryFormer forms an entry from a
 * token's oldest lines only when its request can go, and Answers carries out
 * what the server's answer means. Reading lines never waits for any of it:
 * `add` only enqueues.
 */
export class Delivery {
  private readonly config: Config
  private readonly sender: Sender
  private readonly clock: Clock
  private readonly reporter: Reporter
  readonly stats: Stats
  private readonly budget: RequestBudget
  private readonly scheduler: Scheduler
  private readonly table: TokenTable
  private readonly former: EntryFormer
  private readonly readiness: Readiness
  private readonly answers: Answers
  private readonly statsTimer: StatsTimer
  private readonly completed: BoundedSet
  /** Each workflow's rows (maxRows): the one place per-token row state lives. */
  readonly rows: RowBudget
  private closed = false
  /** The disk spool (spoolDir): told what is queued, sent and settled. */
  private readonly spool: SpoolHooks | undefined

  constructor (config: Config, sender: Sender, clock: Clock, reporter: Reporter, emit: Emit, stats: Stats, budget?: RequestBudget, spool?: SpoolHooks) {
    this.config = config
    this.spool = spool
    this.sender = sender
    this.clock = clock
    this.reporter = reporter
    this.stats = stats
    // The transport hands in the budget (with redisUrl, one shared by every process on the key);
    // alone, delivery paces this process with its own pacer and pause.
    this.budget = budget ?? new LocalBudget(config.maxRequestsPerSecond, config.burst, clock, config.maxRetryDelay)
    this.scheduler = new Scheduler(config.concurrency, this.budget, clock, (queue) => this.dispatch(queue))
    this.completed = new BoundedSet(config.maxTokens)
    this.rows = new RowBudget(config.maxRows, config.maxTokens)
    const drops = new Drops(stats, reporter, emit, config.maxBufferedBytes)
    this.table = new TokenTable(config.maxBufferedBytes, config.maxEntryBytes, stats, drops, this.scheduler, this.rows, clock, spool, (queue) => this.readiness.forget(queue))
    this.statsTimer = new StatsTimer(config.statsInterval, clock, stats, emit, this.table.memory, this.scheduler)
    this.readiness = new Readiness(config.flushInterval, clock, this.scheduler, this.table, reporter, this.statsTimer)
    this.former = new EntryFormer(config, clock, this.table, this.rows, spool, (queue) => this.readiness.forced(queue))
    this.answers = new Answers(config, clock, this.budget, this.scheduler, this.readiness, this.table, stats, reporter, emit, () => this.abandon())
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
    // The clock is read once per line.
    const now = this.clock.now()
    this.table.push(queue, text, bytes, now)
    this.readiness.lineAdded(queue, now)
    this.table.evictIfOver()
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
    this.table.complete(queue, text, bytes, returnValues)
    // The workflow waits for it: the token is ready now, ahead of tokens that only log.
    this.readiness.makeReady(queue)
    this.scheduler.promote(queue)
    this.table.evictIfOver()
  }

  /** Rows a workflow used before a restart (its spool kept them): its budget goes on from there. */
  restoreRows (token: string, state: unknown): void {
    const rows = this.rows.restore(token, state)
    // Kept again at once: the ended process's spool file goes once this one holds what it held.
    if (rows !== undefined) this.spool?.setState(token, rows)
  }

  /** A line the router gave up on before it could be queued: counted, emitted and explained like every drop. */
  discard (token: string, reason: DropReason): void {
    this.table.drops.lines(reason, 1, token)
  }

  /** Checks whether lines of a token may be queued; counts them as dropped if not. `completion`: the bytes of a completing line. */
  private accept (token: string, completion?: number): TokenQueue | undefined {
    const queue = this.table.get(token)
    const keyFailed = this.answers.keyFailure !== undefined
    const dropMode = this.config.onRateLimit === 'drop'
    // The common case, a token already queueing and nothing wrong: no further lookups.
    if (queue !== undefined && !queue.closed && !keyFailed && !this.closed && !dropMode) return queue
    let reason: DropReason | undefined
    if (keyFailed) reason = 'auth'
    else if (this.closed) reason = 'shutdown'
    else if (this.answers.dead.has(token)) reason = 'deadToken'
    else if (this.completed.has(token) || queue?.closed === true) reason = 'completed'
    else if (dropMode && this.clock.now() < this.budget.pausedUntil()) reason = 'rateLimited'
    if (reason === undefined) {
      // A completion finishes a workflow: the caps hold it back only at twice their size, so
      // that a flood of completions (each for a new token) still cannot grow without bound.
      const over = completion === undefined ? 1 : 2
      if ((queue === undefined && this.table.size >= over * this.config.maxTokens) ||
        (completion !== undefined && this.table.memory.bytes + completion > over * this.config.maxBufferedBytes)) reason = 'overflow'
    }
    if (reason !== undefined) {
      this.table.refuse(token, reason, completion !== undefined)
      return undefined
    }
    return queue ?? this.table.open(token)
  }

  /**
   * The scheduler granted a request slot: the token's entry is formed now from
   * its oldest lines (or is the one already attempted, resent as it was).
   */
  private dispatch (queue: TokenQueue): boolean {
    const entry = queue.current ?? this.former.next(queue)
    if (entry === undefined) return false
    this.send(queue, entry)
    return true
  }

  private send (queue: TokenQueue, entry: Entry): void {
    queue.toSending()
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
    queue.toCollecting()
    if (!entry.settled) this.answers.carryOut(queue, entry, outcome)
    // Else it was given up on while in flight (shutdown, key failure): its answer no longer matters.
    this.readiness.review(queue)
    this.scheduler.done()
  }

  /**
   * Makes every token with queued lines ready and resolves once what was
   * queued now is delivered or given up on. Meanwhile client pacing holds
   * nothing back: only the server's own pauses do.
   */
  flush (): Promise<void> {
    const waits: Array<Promise<void>> = []
    for (const queue of this.table.all()) {
      this.readiness.force(queue)
      this.readiness.makeReady(queue)
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
    // Readiness holds the one flag: from now on nothing waits for flushInterval.
    if (this.readiness.closing) return
    this.readiness.closing = true
    const deadline = this.answers.deadline = this.clock.now() + this.config.closeTimeout
    // An exiting process has no later requests to protect: from now on only the server paces.
    this.scheduler.bypassPacing(true)
    const timer = this.clock.setTimeout(() => this.abandon(), this.config.closeTimeout)
    if (outlasts(this.budget.pausedUntil(), deadline)) this.abandon()
    // Lines that came while it waited are delivered too: until the deadline the server would take them.
    do {
      await this.flush()
    } while (this.table.unsettled())
    this.clock.clearTimeout(timer)
    this.closed = true
    this.scheduler.stop()
    this.statsTimer.stop()
    this.answers.scopeHint(1)
    this.statsTimer.send()
    const summary = summaryLine(this.stats)
    if (summary !== '') {
      const suppressed = this.reporter.suppressed > 0 ? `; ${this.reporter.suppressed} further problem lines were suppressed` : ''
      this.reporter.always(`closed: ${summary}${suppressed}`)
    }
    // Aborts whatever is still in flight after the deadline.
    await this.sender.destroy()
    await this.budget.close()
  }

  /** The deadline: what is queued or waiting is dropped as `shutdown`, and so is what comes later. */
  private abandon (): void {
    this.closed = true
    this.table.abandon()
  }
}
