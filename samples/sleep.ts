// Stands in for the guides' client pod (curlimages/curl, Istio's sleep sample): it only waits until
// it is told to stop; calls are made from it with `strait exec`.
import { podName } from './common.js';

// A timer keeps the process alive; nothing else runs.
const keepAlive = setInterval(() => undefined, 1 << 30);
const stop = () => {
  clearInterval(keepAlive);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

process.stdout.write(`sleep: ${podName()} waiting; run commands in it with strait exec\n`);
