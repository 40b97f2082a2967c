import type { Clock } from './clock'
import type { RequestBudget } from './request-budget'
import type { TokenQueue } from './token-queue'

/** A token's place in the waiting line: the scheduler's own, not the queue's. */
interface Node {
  queue: TokenQueue
  /** Its index in the heap. */
  index: number
  /** In which order it joined the waiting line, and when. */
  order: number
  since: number
  /** 1 while its next request completes the workflow: it goes before tokens that only log. */
  priority: number
}

/**
 * Who sends next, and when: ready tokens are served longest-waiting first, at
 * most `concurrency` at once, as the request budget allows. A token served goes
 * to the back when it is ready again, so a flooding workflow gets one turn per
 * round like every other, and its backlog grows into fuller entries, not into
 * more of them. While a flush or close is under way the
 * client's own pacing is bypassed: only a pause the server asked for holds
 * requests back, since an exiting process has no later requests to protect.
 * A budget shared with other processes is never bypassed: it guards theirs.
 */
export class Scheduler {
  private readonly concurrency: number
  private readonly budget: RequestBudget
  private readonly clock: Clock
  /** Forms the token's entry and sends it; false when nothing was left to send. */
  private readonly dispatch: (queue: TokenQueue) => boolean
  private heap: Node[] = []
  private readonly nodes = new Map<TokenQueue, Node>()
  private inFlight = 0
  private order = 0
  private timer: unknown = undefined
  private timerAt = 0
  private bypass = 0
  private stopped = false

  constructor (concurrency: number, budget: RequestBudget, clock: Clock, dispatch: (queue: TokenQueue) => boolean) {
    this.concurrency = concurrency
    this.budget = budget
    this.clock = clock
    this.dispatch = dispatch
    budget.onChange(() => this.pump())
  }

  /** Tokens ready and waiting for a request slot. */
  get waiting (): number {
    return this.heap.length
  }

  /** Since when the longest-waiting ready token has waited for a slot; undefined when none waits. */
  get oldestWaiting (): number | undefined {
    return this.heap[0]?.since
  }

  /** A token is ready: it waits its turn. */
  ready (queue: TokenQueue): void {
    queue.toReady()
    const node: Node = { queue, index: this.heap.length, order: this.order++, since: this.clock.now(), priority: queue.completing ? 1 : 0 }
    this.nodes.set(queue, node)
    this.heap.push(node)
    // `order` only grows, so one that only logs joins in place; a completion may move up.
    if (node.priority === 1) this.up(node.index)
    this.pump()
  }

  /** A token already waiting now completes its workflow: it moves ahead of those that only log. */
  promote (queue: TokenQueue): void {
    const node = this.nodes.get(queue)
    if (node === undefined || node.priority === 1) return
    node.priority = 1
    this.up(node.index)
  }

  /** Takes a token out of the waiting line (its lines were dropped). */
  remove (queue: TokenQueue): void {
    const node = this.nodes.get(queue)
    if (node === undefined) return
    this.nodes.delete(queue)
    queue.toCollecting()
    const i = node.index
    const last = this.heap.pop() as Node
    if (last === node) return
    // The last one may be a completion that belongs higher, or one that belongs lower.
    this.heap[i] = last
    last.index = i
    this.down(i)
    if (last.index === i) this.up(i)
  }

  /** A request finished (answered, or given up on): its slot is free. */
  done (): void {
    this.inFlight--
    this.pump()
  }

  /** flush() and close() call this while they wait: client pacing stops holding requests back. */
  bypassPacing (on: boolean): void {
    this.bypass += on ? 1 : -1
    this.pump()
  }

  /** Nothing more is sent (the key failed, or close is done). */
  stop (): void {
    this.stopped = true
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Starts as many requests as concurrency, the server's pause and pacing allow. */
  pump (): void {
    while (!this.stopped && this.inFlight < this.concurrency && this.heap.length > 0) {
      const now = this.clock.now()
      const paused = this.budget.pausedUntil()
      if (now < paused) {
        this.arm(paused - now)
        return
      }
      // Taken even when bypassed, so that a shared budget still counts the request.
      const wait = this.budget.take(now)
      if (wait > 0 && (this.bypass === 0 || this.budget.holdsWhileClosing())) {
        this.arm(wait)
        return
      }
      const queue = this.pop()
      if (this.dispatch(queue)) this.inFlight++
      // Nothing was sent (every line was blank after cleaning): the slot taken is not spent.
      else if (wait === 0) this.budget.giveBack()
    }
  }

  private arm (ms: number): void {
    const at = this.clock.now() + ms
    // A wait that got shorter (the pace recovered, a permit came sooner) is not held to the longer one.
    if (this.timer !== undefined) {
      if (this.timerAt <= at) return
      this.clock.clearTimeout(this.timer)
    }
    this.timerAt = at
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.pump()
    }, ms)
  }

  private pop (): TokenQueue {
    const top = (this.heap[0] as Node).queue
    this.remove(top)
    return top
  }

  /**
   * Who goes first: a request that completes a workflow, then whoever joined
   * the waiting line first. A completion is what a waiting workflow needs, and
   * at close, when time is short, the one request that must not be left out.
   * A heap rather than a list, so that any token can leave it.
   */
  private before (a: Node, b: Node): boolean {
    return a.priority !== b.priority ? a.priority > b.priority : a.order < b.order
  }

  private up (i: number): void {
    const heap = this.heap
    const item = heap[i] as Node
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = heap[p] as Node
      if (!this.before(item, parent)) break
      heap[i] = parent
      parent.index = i
      i = p
    }
    heap[i] = item
    item.index = i
  }

  private down (i: number): void {
    const heap = this.heap
    const n = heap.length
    const item = heap[i] as Node
    for (;;) {
      let c = 2 * i + 1
      if (c >= n) break
      if (c + 1 < n && this.before(heap[c + 1] as Node, heap[c] as Node)) c++
      const child = heap[c] as Node
      if (!this.before(child, item)) break
      heap[i] = child
      child.index = i
      i = c
    }
    heap[i] = item
    item.index = i
  }
}
