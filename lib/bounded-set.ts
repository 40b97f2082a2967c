/**
 * A set of strings that forgets its oldest members past `max`: memory of dead
 * and completed event tokens must not grow with the life of the process.
 */
export class BoundedSet {
  private readonly max: number
  private readonly set = new Set<string>()

  constructor (max: number) {
    this.max = max
  }

  has (key: string): boolean {
    return this.set.has(key)
  }

  add (key: string): void {
    this.set.delete(key)
    this.set.add(key)
    if (this.set.size > this.max) this.set.delete(this.set.values().next().value as string)
  }

  get size (): number {
    return this.set.size
  }
}
