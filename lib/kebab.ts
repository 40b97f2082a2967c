/** An option's name as a command-line flag: 'flushInterval' → 'flush-interval'. */
export function kebab (option: string): string {
  return option.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
}
