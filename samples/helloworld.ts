// Stands in for Istio's helloworld sample (docker.io/istio/examples-helloworld-v1|v2): answers
// GET /hello with its version and the pod that served it, on port 5000.
import { podName, runHttpSample, sendText } from './common.js';

// The image sets SERVICE_VERSION (see images.ts); a container's env may override it, as with Istio's image.
const version = process.env.SERVICE_VERSION || 'v1';
const pod = podName();

runHttpSample({
  sample: 'helloworld',
  describe: version,
  port: 5000,
  handle(req, res, url) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'Method Not Allowed\n');
    switch (url.pathname) {
      case '/hello':
        // The exact line Istio's app prints, so the guides' outputs match.
        return sendText(res, 200, `Hello version: ${version}, instance: ${pod}\n`);
      case '/health':
        return sendText(res, 200, 'Helloworld is healthy');
      default:
        return sendText(res, 404, 'Not Found\n');
    }
  },
});
