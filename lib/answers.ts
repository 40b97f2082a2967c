import { BoundedSet } from './bounded-set'
import { classify, type Outcome, type Verdict } from './classify'
import type { Clock } from './clock'
import type { Emit } from './events'
import type { Config } from './options'
import { decide, type Decision } from './policy'
import { oneLine, type Reporter, shortToken } from './reporter'
import type { RequestBudget } from './request-budget'
import type { Readiness } from './readiness'
import type { Scheduler } from './scheduler'
import { count, type Stats } from './stats'
import type { Entry, TokenQueue } from './token-queue'
import type { TokenTable } from './token-table'

/**
 * Carries out what a server's answer means: `classify` reads it, `decide`
 * says what to do, and this does it (counts, pauses, retries, drops, the
 * stderr line). It also keeps what answers taught: a failed key, dead tokens,
 * whether anything was ever accepted, and the run of rate limits.
 */
export class Answers {
  private readonly config: Config
  private readonly clock: Clock
  private readonly budget: RequestBudget
  private readonly scheduler: Scheduler
  private readonly readiness: Readiness
  private readonly table: TokenTable
  private readonly stats: Stats
  private readonly reporter: Reporter
  private readonly emit: Emit
  /** Gives up on everything at once: a pause outlasts the close deadline. */
  private readonly giveUpNow: () => void
  /** Tokens the server refused: their later lines are dropped as `deadToken`. */
  readonly dead: BoundedSet
  /** The key the server refused: nothing more is sent. */
  keyFailure: Verdict | undefined = undefined
  /** Clock ms by which close() must be done; Infinity while not closing. */
  deadline = Infinity
  private rateLimitStreak = 0
  private succeeded = false

  constructor (config: Config, clock: Clock, budget: RequestBudget, scheduler: Scheduler, readiness: Readiness, table: TokenTable, stats: Stats, reporter: Reporter, emit: Emit, giveUpNow: () => void) {
    this.config = config
    this.clock = clock
    this.budget = budget
    this.scheduler = scheduler
    this.readiness = readiness
    this.table = table
    this.stats = stats
    this.reporter = reporter
    this.emit = emit
    this.giveUpNow = giveUpNow
    this.dead = new BoundedSet(config.maxTokens)
  }

  /** The answer to the token's attempted entry, not settled yet. */
  carryOut (queue: TokenQueue, entry: Entry, outcome: Outcome): void {
    const now = this.clock.now()
    const verdict = classify(outcome, now)
    if (verdict.rateLimit !== undefined) this.budget.observe(verdict.rateLimit.limit, verdict.rateLimit.remaining, verdict.rateLimit.resetAt)
    if (this.keyFailure !== undefined && verdict.action !== 'ok') {
      // The key failed while this request was in flight: nothing will be sent again.
      this.table.dropEntry(queue, entry, 'auth', this.keyFailure.code)
      return
    }
    if (verdict.warning !== undefined) this.reporter.problem('WARNING', `the server warns: ${verdict.warning}`)
    const decision = decide(verdict, {
      now,
      attempts: entry.attempts,
      rateLimitStreak: this.rateLimitStreak,
      pausedUntil: this.budget.pausedUntil(),
      deadline: this.deadline,
      maxRetries: this.config.maxRetries,
      maxRetryDelay: this.config.maxRetryDelay,
      retryAmbiguous: this.config.retryAmbiguous,
      onRateLimit: this.config.onRateLimit
    })
    switch (decision.kind) {
      case 'delivered':
        this.delivered(queue, entry)
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

  private delivered (queue: TokenQueue, entry: Entry): void {
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
    this.table.settle(queue, entry)
  }

  private pause (queue: TokenQueue, entry: Entry, verdict: Verdict, decision: Decision & { kind: 'pause' }, now: number): void {
    this.stats.rateLimited++
    if (decision.slowDown) {
      this.rateLimitStreak++
      this.budget.slowDown(now)
    }
    this.budget.pause(decision.until)
    this.emit('bitrix24:rateLimited', { code: verdict.code, retryAfter: decision.delay })
    this.reporter.problem('RATE_LIMITED', `${describe(verdict)}; sending pauses ${decision.delay} ms (onRateLimit: ${this.config.onRateLimit})`)
    if (decision.then === 'drop') {
      this.table.dropEntry(queue, entry, 'rateLimited', verdict.code)
      this.table.dropAll('rateLimited', verdict.code)
    } else if (decision.then === 'giveUp') {
      this.giveUpNow()
    } else {
      // The entry was not taken in: it goes again, unchanged, when the pause ends.
      this.scheduler.ready(queue)
    }
  }

  private retry (queue: TokenQueue, entry: Entry, verdict: Verdict, decision: Decision & { kind: 'retry' }): void {
    if (decision.slowDown) this.budget.slowDown(this.clock.now())
    entry.attempts++
    this.stats.retries++
    if (decision.possibleDuplicate) this.stats.possibleDuplicates++
    this.reporter.problem(`RETRY:${verdict.code}`, `${describe(verdict)}; retrying (at most ${count(this.config.maxRetries, 'time', 'times')} per entry)`)
    this.readiness.retryAfter(queue, decision.delay)
  }

  private giveUp (queue: TokenQueue, entry: Entry, verdict: Verdict, decision: Decision & { kind: 'drop' }): void {
    if (decision.slowDown) this.budget.slowDown(this.clock.now())
    if (decision.reason === 'ambiguous') {
      this.reporter.problem('AMBIGUOUS', `a request failed after it was sent (${describe(verdict)}); retryAmbiguous is off, so the entry is dropped rather than risk writing it twice`)
    } else if (decision.reason === 'retriesExhausted') {
      this.reporter.problem(`EXHAUSTED:${verdict.code}`, `an entry failed ${entry.attempts + 1} times (${describe(verdict)}); it is dropped`)
    } else if (decision.reason === 'rejected') {
      this.reporter.problem(`REJECTED:${verdict.code}`, `event token ${shortToken(queue.token)}: ${describe(verdict)}; the entry is dropped${serverSays(verdict, true)}`)
    }
    this.table.dropEntry(queue, entry, decision.reason, verdict.code)
    if (decision.wholeToken) this.table.dropToken(queue, decision.reason, verdict.code)
  }

  private failKey (verdict: Verdict): void {
    this.keyFailure = verdict
    this.scheduler.stop()
    this.reporter.problem(`KEY:${verdict.code}`, `${describe(verdict)}; nothing more is sent with this key${serverSays(verdict)}`)
    this.emit('bitrix24:authError', { code: verdict.code, status: verdict.status, advice: verdict.advice })
    this.table.dropAll('auth', verdict.code)
  }

  private failToken (queue: TokenQueue, entry: Entry, verdict: Verdict): void {
    this.dead.add(queue.token)
    this.reporter.problem('TOKEN:' + verdict.code, `event token ${shortToken(queue.token)}: ${describe(verdict)}; its lines are dropped, other workflows go on${serverSays(verdict)}`)
    this.table.dropEntry(queue, entry, 'deadToken', verdict.code)
    this.table.dropToken(queue, 'deadToken', verdict.code)
    this.scopeHint(2)
  }

  /** Every token so far was refused (at least `tokens` of them) and none was ever accepted: the key may lack the scope. */
  scopeHint (tokens = 2): void {
    if (this.succeeded || this.dead.size < tokens) return
    this.reporter.problem('SCOPE_HINT', 'every event token so far was refused and none was ever accepted: the API key may lack the bizproc scope')
  }
}

function describe (verdict: Verdict): string {
  return verdict.status === 0 ? `${verdict.code}: ${verdict.advice}` : `HTTP ${verdict.status} ${verdict.code}: ${verdict.advice}`
}

/**
 * What the server said, last in a line so that the 200-character cap of a
 * stderr line cuts it rather than the fix: its hint, and for a refused entry
 * its message (a 422 says there why Bitrix24 refused it). Cleaned and capped.
 */
function serverSays (verdict: Verdict, withMessage = false): string {
  const said = [
    withMessage && verdict.message !== undefined ? `server message: ${oneLine(verdict.message, 100)}` : undefined,
    verdict.hint === undefined ? undefined : `server hint: ${oneLine(verdict.hint, 100)}`
  ].filter((text) => text !== undefined)
  return said.length === 0 ? '' : ` (${said.join('; ')})`
}
