// Preloaded into each control plane by `run.ts --profile` (NODE_OPTIONS=--import): the first
// SIGUSR2 starts V8's CPU profiler, the next writes the profile to $STRAIT_PROFILE_DIR and stops it,
// so a profile covers exactly one phase of the benchmark.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.STRAIT_PROFILE_DIR;
const session = new Session();
session.connect();
let running = false;
let phase = 0;

process.on('SIGUSR2', () => {
  if (!running) {
    running = true;
    session.post('Profiler.enable', () => session.post('Profiler.start'));
    return;
  }
  running = false;
  session.post('Profiler.stop', (err, result) => {
    if (err || !dir) return;
    writeFileSync(join(dir, `${process.pid}-${++phase}.cpuprofile`), JSON.stringify(result.profile));
  });
});
