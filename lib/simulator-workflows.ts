// What the simulated Bitrix24 keeps of each workflow: its log rows (only the
// newest `keepRows`, as Bitrix24 cloud does), the completion of its activity,
// the log calls it ignored after that, and whether the workflow is gone.

/** A completion (`POST /v1/workflows/event`) as received. */
export interface SimulatorEvent {
  eventToken: string
  returnValues: Record<string, unknown>
  logMessage?: string
}

function append (map: Map<string, string[]>, token: string, message: string): void {
  const list = map.get(token)
  if (list === undefined) map.set(token, [message])
  else list.push(message)
}

/** The workflows one simulator has seen. */
export class SimulatedWorkflows {
  private readonly rows = new Map<string, string[]>()
  private readonly erasedRows = new Map<string, number>()
  private readonly ignoredRows = new Map<string, string[]>()
  private readonly events = new Map<string, SimulatorEvent>()
  // Killed and finished tokens behave the same on the wire: the workflow is
  // gone, so Bitrix24 refuses every call carrying the token.
  private readonly gone = new Set<string>()
  /** Rows written, in all workflows. */
  written = 0
  /** Rows erased to keep each workflow to `keepRows`. */
  erasedTotal = 0
  // Every workflow held, oldest first: past `maxWorkflows` the oldest is forgotten.
  private readonly seen = new Set<string>()

  constructor (private readonly keepRows: number, private readonly maxWorkflows = Infinity) {}

  /** Notes a workflow that leaves something behind; forgets the oldest past `maxWorkflows`. */
  private hold (token: string): void {
    if (this.seen.has(token)) return
    this.seen.add(token)
    if (this.seen.size <= this.maxWorkflows) return
    const oldest = this.seen.values().next().value as string
    this.seen.delete(oldest)
    this.rows.delete(oldest)
    this.erasedRows.delete(oldest)
    this.ignoredRows.delete(oldest)
    this.events.delete(oldest)
    this.gone.delete(oldest)
  }

  erased (token: string): number {
    return this.erasedRows.get(token) ?? 0
  }

  entries (token: string): string[] {
    return [...(this.rows.get(token) ?? [])]
  }

  allEntries (): Map<string, string[]> {
    return new Map([...this.rows].map(([token, list]) => [token, [...list]]))
  }

  ignored (token: string): string[] {
    return [...(this.ignoredRows.get(token) ?? [])]
  }

  event (token: string): SimulatorEvent | undefined {
    return this.events.get(token)
  }

  /** The workflow ended or its token was revoked: every later call is refused. */
  end (token: string): void {
    this.hold(token)
    this.gone.add(token)
  }

  isGone (token: string): boolean {
    return this.gone.has(token)
  }

  isCompleted (token: string): boolean {
    return this.events.has(token)
  }

  // Bitrix24 cloud deletes a workflow's oldest tracking rows past 50 after every write.
  /** Writes one log row. */
  write (token: string, message: string): void {
    this.hold(token)
    append(this.rows, token, message)
    this.written++
    const list = this.rows.get(token) as string[]
    if (this.keepRows > 0 && list.length > this.keepRows) {
      const over = list.length - this.keepRows
      list.splice(0, over)
      this.erasedTotal += over
      this.erasedRows.set(token, this.erased(token) + over)
    }
  }

  /** A log call after the completion: answered as a success and thrown away. */
  ignore (token: string, message: string): void {
    this.hold(token)
    append(this.ignoredRows, token, message)
  }

  /** The activity's completion; its message, when not empty, is a row like any other. */
  complete (event: SimulatorEvent, message: string): void {
    this.hold(event.eventToken)
    this.events.set(event.eventToken, event)
    if (message !== '') this.write(event.eventToken, message)
  }

  reset (): void {
    this.rows.clear()
    this.erasedRows.clear()
    this.ignoredRows.clear()
    this.events.clear()
    this.gone.clear()
    this.seen.clear()
    this.written = 0
    this.erasedTotal = 0
  }
}
