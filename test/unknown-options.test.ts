import t from 'tap'
import { unknownNames, unknownOptionsError, withoutUnknown } from '../lib/unknown-options'

const KEY = 'vibe_api_test_key'

// parseOptions' rejection of unknown names is tested in options.test.ts; here the parts the worker uses.
t.test('unknown names: found, left out, and an error only when there are some', async (t) => {
  t.same(unknownNames('x'), [])
  t.same(unknownNames({ apiKey: KEY, flushIntervall: 1, $context: {}, pinoWillSendConfig: true }), ['flushIntervall'])
  t.same(withoutUnknown({ apiKey: KEY, flushIntervall: 1 }), { apiKey: KEY })
  const given = { apiKey: KEY }
  t.equal(withoutUnknown(given), given, 'nothing to leave out: the same object')
  t.equal(unknownOptionsError({ apiKey: KEY }), undefined)
  t.match(unknownOptionsError({ apiKey: KEY, levle: 'warn' }), { code: 'ERR_BITRIX24_UNKNOWN_OPTION', option: 'levle', message: /did you mean "level"/ })
})
