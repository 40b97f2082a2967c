/**
 * Makes an entry's text safe for the Bitrix24 workflow log. Runs once per
 * entry, not per line: the common case is one regex test that finds nothing.
 */

// C0 controls but tab and newline, DEL, C1 controls, and any UTF-16 surrogate:
// matching control characters is the point here.
/* eslint-disable no-control-regex */
const SUSPECT = /[\0-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]|\[timestamp=|\[\/timestamp\]|\{=user:/
const CONTROL = /[\0-\x08\x0b-\x1f\x7f-\x9f]/g
/* eslint-enable no-control-regex */
const NON_BMP = /[\ud800-\udbff][\udc00-\udfff]/g
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
// Bitrix24 rewrites these when it shows a log; a zero-width space keeps them as written.
const MARKUP = /\[timestamp=|\[\/timestamp\]|\{=user:/g
const ZWSP = '\u200b'

export function sanitize (text: string, keepNonBmp: boolean): string {
  if (!SUSPECT.test(text)) return text
  let out = text.replace(CONTROL, '')
  // Lone surrogates cannot be encoded as UTF-8 at all; emoji are not known to survive Bitrix24.
  out = out.replace(LONE_SURROGATE, '\ufffd')
  if (!keepNonBmp) out = out.replace(NON_BMP, '\ufffd')
  return out.replace(MARKUP, (m) => m[0] + ZWSP + m.slice(1))
}
