/**
 * Delay before retry number `attempt` (1-based): exponential with full jitter,
 * so that many clients failing together do not retry together. A delay the
 * server asked for is obeyed as given (capped), never jittered below it.
 */
export function backoff (attempt: number, base: number, cap: number, serverDelay: number | undefined, random: () => number = Math.random): number {
  if (serverDelay !== undefined) return Math.min(cap, serverDelay)
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt - 1, 30))
  return Math.floor(random() * ceiling)
}
