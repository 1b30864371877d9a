// Stands in for podinfo (stefanprodan/podinfo, ghcr.io/stefanprodan/podinfo), which Linkerd's
// multicluster demo uses: on port 9898 (env PODINFO_PORT) it answers GET / with podinfo's runtime
// JSON naming the pod, and has podinfo's probe and testing endpoints.
import { envPort, podName, readBody, runHttpSample, sendJson, waitUnlessClosed } from './common.js';
import type { ServerResponse } from 'node:http';

const VERSION = '6.7.0';
const pod = podName();
const port = envPort('podinfo', 'PODINFO_PORT', 9898);
// The same settings podinfo reads from its environment (Linkerd's demo sets these per cluster).
const message = process.env.PODINFO_UI_MESSAGE || `greetings from podinfo v${VERSION}`;
const color = process.env.PODINFO_UI_COLOR || '#34577c';
const logo = process.env.PODINFO_UI_LOGO || 'https://raw.githubusercontent.com/stefanprodan/podinfo/gh-pages/cuddle_clap.gif';

function info() {
  return {
    hostname: pod,
    version: VERSION,
    revision: 'strait-sample',
    color,
    logo,
    message,
    goos: process.platform,
    goarch: process.arch,
    runtime: `node${process.versions.node}`,
    num_goroutine: '1',
    num_cpu: '1',
  };
}

function badRequest(res: ServerResponse, text: string): void {
  sendJson(res, 400, { code: 400, message: text });
}

runHttpSample({
  sample: 'podinfo',
  describe: VERSION,
  port,
  async handle(req, res, url) {
    const path = url.pathname;
    if (path === '/' || path === '/api/info') return sendJson(res, 200, info());
    if (path === '/version') return sendJson(res, 200, { commit: 'strait-sample', version: VERSION });
    if (path === '/healthz' || path === '/readyz') return sendJson(res, 200, { status: 'OK' });
    if (path === '/headers') return sendJson(res, 200, req.headers);
    if (path === '/echo' || path === '/api/echo') {
      // podinfo answers 202 with the posted body as it came.
      const body = await readBody(req);
      res.writeHead(202, { 'content-type': req.headers['content-type'] ?? 'text/plain', 'x-color': color, 'content-length': body.length });
      res.end(body);
      return;
    }
    const status = /^\/status\/([^/]+)$/.exec(path);
    if (status) {
      const code = Number(status[1]);
      if (!Number.isInteger(code) || code < 200 || code > 599) return badRequest(res, `status code must be a number from 200 to 599, got ${JSON.stringify(status[1])}`);
      return sendJson(res, code, { status: code });
    }
    const delay = /^\/delay\/([^/]+)$/.exec(path);
    if (delay) {
      const seconds = Number(delay[1]);
      if (!Number.isInteger(seconds) || seconds < 0) return badRequest(res, `delay must be a whole number of seconds, got ${JSON.stringify(delay[1])}`);
      if (await waitUnlessClosed(res, seconds * 1000)) sendJson(res, 200, { delay: seconds });
      return;
    }
    return sendJson(res, 404, { code: 404, message: 'not found' });
  },
});
