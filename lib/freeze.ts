/**
 * Freezes an object and everything it holds, so that exported tables
 * (defaults, RULES) cannot be changed by an app for every other user of the
 * module.
 */
export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}
