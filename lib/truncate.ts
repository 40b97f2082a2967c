/**
 * Cuts text to at most `maxBytes` UTF-8 bytes, ending in a visible marker that
 * says how much was cut, so a reader knows the line was longer.
 */
export function truncate (text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8')
  if (buf.length <= maxBytes) return text
  let keep = maxBytes
  // The marker's length depends on the number it shows, so settle both together.
  for (;;) {
    // Step back to a character boundary: never leave half a UTF-8 sequence.
    while (keep > 0 && ((buf[keep] as number) & 0xc0) === 0x80) keep--
    const marker = ` … [truncated ${buf.length - keep} bytes]`
    const room = maxBytes - Buffer.byteLength(marker)
    if (keep <= room || keep === 0) return buf.subarray(0, keep).toString('utf8') + marker
    keep = Math.max(0, room)
  }
}
