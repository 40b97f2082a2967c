import type { Clock } from './clock'
import { omittedLine } from './format'
import type { MemoryBudget } from './memory-budget'
import type { Config } from './options'
import { HARD_ENTRY_BYTES, type RowBudget } from './row-budget'
import { sanitize } from './sanitize'
import type { SpoolHooks } from './spool'
import type { Entry, TokenQueue } from './token-queue'
import type { TokenTable } from './token-table'
import { truncate } from './truncate'

// Room an entry keeps for the marker line of lines left out ("… 1,234,567 lines omitted …").
const MARKER_BYTES = 48

/** Text taken out of a queue, as queued (not cleaned yet). */
interface Raw {
  text: string
  bytes: number
  lines: number
  since: number
}

/** An entry's text before cleaning, with what it completes and the most it may hold. */
interface Formed extends Raw {
  returnValues: Record<string, unknown> | undefined
  cap: number
  /** Set (to when it was formed) for an entry that spends one of the token's planned rows. */
  rowAt?: number
}

/**
 * Forms a token's next entry when its request can go: its oldest lines, or the
 * completion carrying the lines that fit its message, cleaned and within its
 * cap. With maxRows it also decides how large an entry grows and which lines
 * are left out when the rows left cannot carry them all.
 */
export class EntryFormer {
  private readonly config: Config
  private readonly clock: Clock
  private readonly table: TokenTable
  private readonly memory: MemoryBudget
  private readonly rows: RowBudget
  private readonly spool: SpoolHooks | undefined
  /** The largest entry when rows run short. */
  private readonly hardBytes: number
  /** Whether flush(), close() send the token's rows at once (a completion does too). */
  private readonly forced: (queue: TokenQueue) => boolean

  constructor (config: Config, clock: Clock, table: TokenTable, rows: RowBudget, spool: SpoolHooks | undefined, forced: (queue: TokenQueue) => boolean) {
    this.forced = forced
    this.config = config
    this.clock = clock
    this.table = table
    this.memory = table.memory
    this.rows = rows
    this.spool = spool
    this.hardBytes = Math.max(config.maxEntryBytes, HARD_ENTRY_BYTES)
  }

  /**
   * The token's next entry, taken out of its queue and held as attempted;
   * undefined when nothing is left to send. Lines that clean to nothing are
   * skipped on the way: Bitrix24 rejects an empty entry, and they are not worth a request.
   */
  next (queue: TokenQueue): Entry | undefined {
    for (;;) {
      const first = queue.consumed + 1
      const raw = this.form(queue)
      if (raw === undefined) {
        this.memory.taken(queue)
        this.table.forgetIfIdle(queue)
        return undefined
      }
      const clean = this.clean(raw.text, raw.bytes, raw.cap)
      if (clean.text === '' && raw.returnValues === undefined) {
        this.table.skipped(queue, first, raw.lines)
        continue
      }
      // Only an entry that goes spends its row: lines that clean to nothing do not.
      if (raw.rowAt !== undefined && queue.rows !== undefined) {
        this.rows.wrote(queue.rows, raw.rowAt)
        // Once per request: the spool keeps the rows used, so that a restart continues the budget.
        this.spool?.setState(queue.token, queue.rows)
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
      this.table.attempt(queue, entry)
      return entry
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
  private form (queue: TokenQueue): Formed | undefined {
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
    const rowAt = rows === undefined ? undefined : now
    if (rows !== undefined) {
      if (queue.completing || this.forced(queue)) {
        cap = hard
        later = Math.max(0, left - 1) * hard + (queue.completing ? hard / 2 : 0)
      } else if (this.rows.nextAfterRow(rows, now) - now > this.config.flushInterval) {
        // Rows run short: the entry grows rather than the rows.
        cap = hard
        later = 0
      }
      if (joined > cap + later) return { ...this.omitting(queue, cap, later), returnValues: undefined, cap, rowAt }
    }
    return { ...this.takeAll(queue, cap), returnValues: undefined, cap, rowAt }
  }

  /** The completion with the token's pending lines in front of its text, up to `room` bytes of lines. */
  private carry (queue: TokenQueue, room: number, cap: number): Formed {
    const lines = queue.joinedBytes <= room ? this.takeAll(queue, room) : this.omitting(queue, room, 0)
    const c = queue.takeCompletion() as { text: string, bytes: number, returnValues: Record<string, unknown> }
    return { text: lines.text + '\n' + c.text, bytes: lines.bytes + 1 + c.bytes, lines: lines.lines + 1, since: lines.since, returnValues: c.returnValues, cap }
  }

  /** The oldest lines up to `room` bytes (at least one batch). */
  private takeAll (queue: TokenQueue, room: number): Raw {
    return queue.take(room) as Raw
  }

  /**
   * Keeps the beginning and the newest lines: this entry takes the oldest lines
   * (up to `room`), `later` bytes of the newest stay for later rows, and what
   * is between is left out, counted under `omitted` (with its drop event), and
   * named by a marker line in its place. With no later row (`later` 0) the
   * newest lines share this entry: half of `room` for the oldest, the rest for
   * the newest. A line is never split: whole batches go or stay.
   */
  private omitting (queue: TokenQueue, room: number, later: number): Raw {
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
    this.table.omitted(queue, gone.lines)
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
}
