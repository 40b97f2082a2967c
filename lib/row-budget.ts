/**
 * How many log rows each workflow may still spend, and when its next row may
 * be written.
 *
 * Bitrix24 cloud keeps only the newest 50 rows of a workflow's log and erases
 * older ones on every write; the workflow's own rows (its other activities,
 * our completion's message) share those 50. A token that wrote a row every
 * flushInterval would push the start of its own log out within minutes, and
 * the start is what a person reads first. So each token gets `maxRows` rows for
 * its activity's whole life, spaced further apart as the activity ages.
 *
 * The schedule. Of `maxRows` rows (M), one is kept for the completion and one
 * for the end (a flush() or close() sends at once), so the schedule plans
 * N = M − 2 rows. The first row goes as soon as flushInterval allows; row u ≥ 1
 * may not go before the age (time since the token's first line)
 *
 *     T(u) = A0 · r^(u − 1),   A0 = 2 s,
 *
 * and never sooner than r times the age at which the previous row went, so
 * that rows left unused by a quiet start are not spent in a burst later. The
 * last planned row, u = N − 1, falls due at the horizon H = 24 h:
 *
 *     A0 · r^(N − 2) = H   ⇒   r = (H / A0)^(1 / (N − 2)).
 *
 * For M = 40, N = 38: r = 43,200^(1/36) ≈ 1.345, so a line waits at most about
 * f = r − 1 ≈ 34.5 % of the activity's age so far (a line logged just after a
 * row at age a goes with the row at age r·a). Rows then cover a day:
 * ln(43,200) / ln(1 + f) ≈ 36 geometric rows after the first, and the rows the
 * flushInterval floor spends early make the later ones come a little later,
 * never more of them. A flush() spends a row too: it raises `used`, so later
 * rows keep to the plan by coming later. Past the horizon (or once the planned
 * rows are spent) lines wait for the completion, a flush() or close().
 *
 * 40 by default: 50 kept rows, less room for the workflow's own rows (its
 * start, other activities' rows, a condition or two).
 */

/** First spacing of the geometric schedule, ms. */
export const FIRST_AGE = 2000
/** Age by which the schedule's last planned row falls due, ms. */
export const HORIZON = 86_400_000
/**
 * The largest entry when rows run short, in UTF-8 bytes: under the 64 KB
 * (65,535 bytes) Bitrix24's log column holds, with room for what sanitising
 * adds and for a marker line.
 */
export const HARD_ENTRY_BYTES = 60_000

/** One token's rows: a small plain object, so that it can be kept or restored as it is. */
export interface RowState {
  /** Clock ms of the token's first line. */
  start: number
  /** Log rows formed so far (the completion not counted). */
  used: number
  /** Clock ms before which the schedule's next row may not go; Infinity once its planned rows are spent. */
  next: number
}

export class RowBudget {
  /** maxRows; 0: off. */
  readonly max: number
  /** Rows the schedule plans (N). */
  readonly planned: number
  /** r: each planned row's earliest age is r times the one before. */
  readonly ratio: number
  private readonly maxTokens: number
  private readonly states = new Map<string, RowState>()

  constructor (maxRows: number, maxTokens: number) {
    this.max = maxRows
    this.maxTokens = maxTokens
    this.planned = Math.max(0, maxRows - 2)
    this.ratio = this.planned > 2 ? Math.pow(HORIZON / FIRST_AGE, 1 / (this.planned - 2)) : HORIZON / FIRST_AGE
  }

  get on (): boolean {
    return this.max > 0
  }

  /**
   * The token's rows, begun now if it has none. Kept after its queue is
   * forgotten between lines, for up to maxTokens tokens (the oldest go first).
   */
  of (token: string, now: number): RowState {
    let state = this.states.get(token)
    // Past maxTokens the state least recently asked for goes, not the oldest: a long
    // activity that logs again must keep its rows used, or it would begin a new budget.
    if (state !== undefined) this.states.delete(token)
    else state = { start: now, used: 0, next: this.planned > 0 ? now : Infinity }
    this.states.set(token, state)
    if (this.states.size > this.maxTokens) this.states.delete(this.states.keys().next().value as string)
    return state
  }

  /**
   * A token's rows as an ended process's spool kept them (RecoveredToken.state),
   * so that a restart continues its budget rather than begin it again. What
   * comes from disk is checked: anything but a RowState is
   * ignored (the token then begins afresh). Returns what it keeps.
   */
  restore (token: string, state: unknown): RowState | undefined {
    const s = state as Partial<RowState> | null
    if (!this.on || typeof s !== 'object' || s === null || !Number.isFinite(s.start) || !Number.isSafeInteger(s.used) ||
      (s.used as number) < 0 || typeof s.next !== 'number' || Number.isNaN(s.next)) return undefined
    const rows: RowState = { start: s.start as number, used: s.used as number, next: s.next }
    this.states.delete(token)
    this.states.set(token, rows)
    if (this.states.size > this.maxTokens) this.states.delete(this.states.keys().next().value as string)
    return rows
  }

  /** The completion settled: the token writes no more rows. */
  forget (token: string): void {
    this.states.delete(token)
  }

  /** Earliest age of planned row `u` (0-based): T(0) = 0, T(u) = A0 · r^(u − 1); Infinity past the plan. */
  due (u: number): number {
    if (u >= this.planned) return Infinity
    return u === 0 ? 0 : FIRST_AGE * Math.pow(this.ratio, u - 1)
  }

  /** Log rows the token may still write, the completion's own row apart. */
  left (state: RowState): number {
    return this.max - 1 - state.used
  }

  /** A log row was formed at `now`: when may the next one go. */
  wrote (state: RowState, now: number): void {
    state.next = this.nextAfterRow(state, now)
    state.used++
  }

  /** When the row after the one written at `now` may go: what `wrote` sets, without writing. */
  nextAfterRow (state: RowState, now: number): number {
    return state.start + Math.max(this.due(state.used + 1), (now - state.start) * this.ratio)
  }
}
