import type { Clock } from './clock'
import type { Emit } from './events'
import type { MemoryBudget } from './memory-budget'
import type { Scheduler } from './scheduler'
import type { Stats } from './stats'

/**
 * The `bitrix24:stats` event: every statsInterval for long-running apps, only
 * when something happened, and whenever delivery has news (a backlog, close).
 */
export class StatsTimer {
  private readonly clock: Clock
  private readonly stats: Stats
  private readonly emit: Emit
  private readonly memory: MemoryBudget
  private readonly scheduler: Scheduler
  private readonly interval: number
  private timer: unknown = undefined
  private seen = -1

  /** `interval` ms between events; 0: only when told. */
  constructor (interval: number, clock: Clock, stats: Stats, emit: Emit, memory: MemoryBudget, scheduler: Scheduler) {
    this.interval = interval
    this.clock = clock
    this.stats = stats
    this.emit = emit
    this.memory = memory
    this.scheduler = scheduler
    if (interval > 0) this.arm()
  }

  private arm (): void {
    this.timer = this.clock.setTimeout(() => {
      const activity = this.stats.received + this.stats.requests + this.stats.spooled
      if (activity !== this.seen) {
        this.seen = activity
        this.send()
      }
      this.arm()
    }, this.interval)
    // In-process, the counters must not keep the application alive.
    this.clock.unref(this.timer)
  }

  /** Emits the counters now, with the waiting figures refreshed. */
  send (): void {
    const now = this.clock.now()
    const oldest = this.memory.oldestSince(now)
    this.stats.waitingTokens = this.scheduler.waiting
    this.stats.oldestWaitingMs = now - oldest
    this.emit('bitrix24:stats', { ...this.stats, dropped: { ...this.stats.dropped }, failedCompletions: [...this.stats.failedCompletions] })
  }

  stop (): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
  }
}
