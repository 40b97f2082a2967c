/**
 * Time as delivery sees it. Tests hand in a fake clock so that backoff,
 * pacing and flush timing are checked without sleeping.
 */
export interface Clock {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
  /** Lets the process exit while only this timer is pending (a fake clock has nothing to let go). */
  unref: (handle: unknown) => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  unref: (handle) => { (handle as NodeJS.Timeout).unref() }
}
