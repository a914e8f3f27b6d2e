// Runs the whole suite once per transport mode (see `TRANSPORT` in
// lib/server.mjs): websocket only, long-polling only, and polling upgraded
// to websocket. Every mode runs even if one fails; the exit code is non-zero
// if any failed. `E2E_TRANSPORT=polling npm run test:one` runs one mode.
import { spawnSync } from 'node:child_process';

const modes = process.env.E2E_TRANSPORT ? [process.env.E2E_TRANSPORT] : ['websocket', 'polling', 'upgrade'];
const failed = [];
for (const mode of modes) {
  console.log(`\n# ==> e2e over ${mode}`);
  const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', 'tests/'], {
    stdio: 'inherit',
    env: { ...process.env, E2E_TRANSPORT: mode },
  });
  if (run.status !== 0) failed.push(mode);
}
if (failed.length) {
  console.error(`\ne2e failed over: ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`\ne2e passed over: ${modes.join(', ')}`);
