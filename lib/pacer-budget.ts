import { Pacer } from './pacer'
import type { RequestBudget } from './request-budget'

/**
 * One process's own budget: the AIMD Pacer plus a pause. Stands in for the
 * scheduler's LocalBudget (issue 8) as the default and as the shared budget's
 * fallback while Redis is away.
 */
export class PacerBudget implements RequestBudget {
  private readonly pacer: Pacer
  private until = 0

  constructor (rate: number, burst: number, now: number) {
    this.pacer = new Pacer(rate, burst, now)
  }

  take (now: number): number {
    if (now < this.until) return this.until - now
    return this.pacer.take(now)
  }

  slowDown (now: number): void {
    this.pacer.slowDown(now)
  }

  speedUp (): void {
    this.pacer.speedUp()
  }

  pause (until: number): void {
    if (until > this.until) this.until = until
  }

  pausedUntil (): number {
    return this.until
  }

  // The Pacer steers by answers alone; the rate-limit headers add nothing it uses yet.
  observe (): void {}

  // Nothing here changes but through the calls above.
  onChange (_listener: () => void): void {}

  close (): Promise<void> {
    return Promise.resolve()
  }
}
