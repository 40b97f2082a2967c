/**
 * Makes an entry's text safe for the Bitrix24 workflow log. Runs once per
 * entry, not per line: the common case is two regex tests that find nothing.
 */

// C0 controls but tab and newline, DEL, C1 controls, and any UTF-16 surrogate:
// matching control characters is the point here.
/* eslint-disable no-control-regex */
// Two tests, not one alternation: a class alone, and markup that starts with a
// literal, each scan fast; joined under /i, every character was tried against
// all of them (a quarter more time over an entry).
const SUSPECT_CHAR = /[\0-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]/
const SUSPECT_MARKUP = /\[(?:timestamp=|\/timestamp\])|\{=/i
const CONTROL = /[\0-\x08\x0b-\x1f\x7f-\x9f]/g
/* eslint-enable no-control-regex */
const NON_BMP = /[\ud800-\udbff][\udc00-\udfff]/g
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
// Bitrix24 rewrites these when it shows a log, in any letter case: [timestamp=…],
// and every {=Source:Field} form ({=user:…}, {=Document:…}, {=Variable:…},
// {=A1234_5678:…}, {{=expression}}); all of them start with `{=`. A zero-width
// space keeps them as written.
const MARKUP = /\[timestamp=|\[\/timestamp\]|\{=/gi
// Text that would show as a blank row: only spaces and characters without a glyph
// (zero-width, bidi controls, soft hyphen, fillers).
const BLANK = /^[\s\u00ad\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u2800\u3164\ufeff\uffa0]*$/
const ZWSP = '\u200b'

/** The text made safe, or '' when nothing of it would be visible. */
export function sanitize (text: string, keepNonBmp: boolean): string {
  if (!SUSPECT_CHAR.test(text) && !SUSPECT_MARKUP.test(text)) return BLANK.test(text) ? '' : text
  let out = text.replace(CONTROL, '')
  // Lone surrogates cannot be encoded as UTF-8 at all; emoji are not known to survive Bitrix24.
  out = out.replace(LONE_SURROGATE, '\ufffd')
  if (!keepNonBmp) out = out.replace(NON_BMP, '\ufffd')
  out = out.replace(MARKUP, (m) => m[0] + ZWSP + m.slice(1))
  return BLANK.test(out) ? '' : out
}
