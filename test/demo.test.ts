// `npm run demo` as a user runs it (after the build): its own simulator, three
// workflows, one meant to fail. A failure must read as a failure.

import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { untracked } from './fixtures/untracked'

t.test('the demo shows the failed import as failed, the others as completed', async (t) => {
  const env = { ...process.env }
  // Against the simulator: a key in the environment would send the demo to the real API.
  delete env.BITRIX24_API_KEY
  delete env.BITRIX24_BASE_URL
  // Nor the test runner's hooks (process tracking, coverage of what is not ours to measure): untracked.
  const { code, stdout, stderr } = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve) => {
    const child = execFile(...untracked(process.execPath, [join(__dirname, '..', 'demo', 'run.js')]), { env, timeout: 60000 }, (_err, stdout, stderr) => {
      resolve({ code: child.exitCode, stdout, stderr })
    })
  })
  t.equal(code, 0, 'every activity was completed')
  t.equal(stderr, '')
  const legacy = stdout.slice(stdout.indexOf('(contacts-legacy.csv)'))
  t.match(legacy, /\n {3}✗ failed: completed with return values \{"status":"failed"/)
  t.notMatch(legacy, /✔/)
  t.equal(stdout.match(/✔ completed, return values \{"status":"ok"/g)?.length, 2)
  t.match(stdout, /\n2 of 3 imports succeeded, 1 failed/)
})
