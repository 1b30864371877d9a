// The fault-injection backend of the Linkerd survey (there an nginx that returns 500 for
// everything): answers 500 to every request on port 8080 (env PORT), naming the pod. Env
// FAILURE_RATE (0..1, default 1) makes only that share fail; the rest answer 200.
import { envPort, envRate, podName, runHttpSample, sendText } from './common.js';

const pod = podName();
const port = envPort('error-injector', 'PORT', 8080);
const failureRate = envRate('error-injector', 'FAILURE_RATE', 1);

runHttpSample({
  sample: 'error-injector',
  describe: `failure rate ${failureRate}`,
  port,
  handle(_req, res) {
    // Math.random() is in [0, 1): a rate of 1 always fails and a rate of 0 never does.
    if (Math.random() < failureRate) return sendText(res, 500, `injected failure from ${pod}\n`);
    return sendText(res, 200, `ok from ${pod}\n`);
  },
});
