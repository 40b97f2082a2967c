import type { Clock } from './clock'
import type { Reporter } from './reporter'
import type { Scheduler } from './scheduler'
import type { StatsTimer } from './stats-timer'
import type { TokenQueue } from './token-queue'
import type { TokenTable } from './token-table'

// A ready token that waits this long for a request slot means the request
// budget cannot keep up with the log rate: say so once.
export const BACKLOG_AFTER = 10_000

/**
 * When a collecting token joins the scheduler's waiting line: at once when an
 * entry is full, a completion waits, or a flush or close forces it; else by a
 * timer, flushInterval after its oldest line and, with maxRows, not before its
 * next row is due. A waiting line that outgrows the request budget is said once.
 */
export class Readiness {
  private readonly flushInterval: number
  private readonly clock: Clock
  private readonly scheduler: Scheduler
  private readonly table: TokenTable
  private readonly reporter: Reporter
  private readonly statsTimer: StatsTimer
  /** close() began: nothing waits for flushInterval any more. */
  closing = false
  private backlogReported = false
  /** Each token's timer: its flushInterval one while collecting, or its retry's; `at`: the clock ms it fires at. */
  private readonly timers = new Map<TokenQueue, { handle: unknown, at: number }>()
  /** Tokens flush() forced: ready whatever their age until their `consumed` count reaches this. */
  private readonly forcedUntil = new Map<TokenQueue, number>()

  constructor (flushInterval: number, clock: Clock, scheduler: Scheduler, table: TokenTable, reporter: Reporter, statsTimer: StatsTimer) {
    this.flushInterval = flushInterval
    this.clock = clock
    this.scheduler = scheduler
    this.table = table
    this.reporter = reporter
    this.statsTimer = statsTimer
  }

  /** Whether the token goes whatever its age: flush(), close(). */
  forced (queue: TokenQueue): boolean {
    if (this.closing) return true
    // Most of the time no flush is under way: no lookup on the path of a line.
    if (this.forcedUntil.size === 0) return false
    // Kept until the token is forgotten: a later flush() sets it again.
    const until = this.forcedUntil.get(queue)
    return until !== undefined && queue.consumed < until
  }

  /** flush(): the token's lines queued so far go whatever their age. */
  force (queue: TokenQueue): void {
    this.forcedUntil.set(queue, queue.pushed)
  }

  /** The token's attempted entry goes again after `delay` ms. */
  retryAfter (queue: TokenQueue, delay: number): void {
    queue.toRetryWait()
    this.arm(queue, delay, () => this.scheduler.ready(queue))
  }

  /** The token was forgotten (nothing queued, nothing attempted): its timer and its flush go. */
  forget (queue: TokenQueue): void {
    this.clear(queue)
    this.forcedUntil.delete(queue)
  }

  /** A line was queued for the token at clock ms `now`. */
  lineAdded (queue: TokenQueue, now: number): void {
    if (queue.phase !== 'collecting') return
    // While closing nothing waits for flushInterval: close() waits for this line too.
    if (this.forced(queue)) this.makeReady(queue)
    else if (queue.full || !this.timers.has(queue)) this.schedule(queue, now)
  }

  /** A collecting token with something to send joins the scheduler's waiting line. */
  makeReady (queue: TokenQueue): void {
    if (queue.phase !== 'collecting' || queue.idle) return
    this.clear(queue)
    this.scheduler.ready(queue)
    if (!this.backlogReported && !this.closing) this.checkBacklog()
  }

  /** After a request of the token ended: ready again at once, later, or forgotten. */
  review (queue: TokenQueue): void {
    if (queue.phase !== 'collecting') return
    if (!queue.hasWork) {
      this.table.forgetIfIdle(queue)
      return
    }
    if (queue.completing || this.forced(queue)) this.makeReady(queue)
    else this.schedule(queue)
  }

  /**
   * A collecting token with lines and nothing forcing it: ready now, or a timer
   * for when it may go: flushInterval after its oldest pending line (at once
   * when that fills an entry), and, with maxRows, not before its next row is due.
   * No timer once its planned rows are spent: the completion, flush() or close() take its lines.
   */
  private schedule (queue: TokenQueue, now = this.clock.now()): void {
    let at = queue.full ? now : queue.headSince + this.flushInterval
    const rows = queue.rows
    if (rows !== undefined) at = Math.max(at, rows.next)
    if (at <= now) {
      this.makeReady(queue)
    } else if (at !== Infinity) {
      // A flood of lines into a full entry that must wait for its row finds the timer set already.
      if (this.timers.get(queue)?.at === at) return
      this.clear(queue)
      this.arm(queue, at - now, () => this.makeReady(queue))
    }
  }

  private arm (queue: TokenQueue, ms: number, fire: () => void): void {
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(queue)
      fire()
    }, ms)
    this.timers.set(queue, { handle, at: this.clock.now() + ms })
  }

  private clear (queue: TokenQueue): void {
    const timer = this.timers.get(queue)
    if (timer === undefined) return
    this.clock.clearTimeout(timer.handle)
    this.timers.delete(queue)
  }

  private checkBacklog (): void {
    const since = this.scheduler.oldestWaiting
    const now = this.clock.now()
    if (since === undefined || now - since <= BACKLOG_AFTER) return
    const waited = Math.round((now - this.table.memory.oldestSince(since)) / 1000)
    // The why (a portal drains about 2 requests/s) is in the README, under this line.
    if (this.reporter.problem('BACKLOG', `the request budget cannot keep up: ${this.scheduler.waiting} workflows wait for a request slot, the oldest line ${waited} s; ` +
      'log fewer lines per workflow, or overflow drops follow')) {
      this.backlogReported = true
      this.statsTimer.send()
    }
  }
}
