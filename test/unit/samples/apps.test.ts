// Each sample app as a real process on its own loopback address, called over real HTTP.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:http';
import { resolveSampleImage } from '../../../samples/images.js';
import { startSample, runUntilExit, type RunningSample } from './run-sample.js';

const started: RunningSample[] = [];
after(async () => {
  await Promise.all(started.map((sample) => sample.stop()));
});

/** Start the sample an image maps to, with the image's env and the pod's. */
async function startImage(image: string, env: Record<string, string>): Promise<RunningSample> {
  const resolved = resolveSampleImage(image);
  assert.ok(resolved, `${image} maps to a sample`);
  return start(resolved.sample, { ...resolved.env, ...env });
}

async function start(sample: string, env: Record<string, string>, readyLine?: RegExp): Promise<RunningSample> {
  const running = await startSample(sample, env, readyLine);
  started.push(running);
  return running;
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const response = await fetch(url, init);
  return { status: response.status, text: await response.text() };
}

test('helloworld answers /hello with the exact line of Istio’s app, version from the image', async () => {
  const v1 = await startImage('docker.io/istio/examples-helloworld-v1', { POD_NAME: 'helloworld-v1-994b78d57-vp86w' });
  const v2 = await startImage('istio/examples-helloworld-v2:1.0', { POD_NAME: 'helloworld-v2-8948bdcb5-z4pz6' });

  assert.deepEqual(await get(v1.url(5000, '/hello')), { status: 200, text: 'Hello version: v1, instance: helloworld-v1-994b78d57-vp86w\n' });
  assert.deepEqual(await get(v2.url(5000, '/hello')), { status: 200, text: 'Hello version: v2, instance: helloworld-v2-8948bdcb5-z4pz6\n' });
  assert.deepEqual(await get(v1.url(5000, '/health')), { status: 200, text: 'Helloworld is healthy' });
  assert.equal((await get(v1.url(5000, '/nope'))).status, 404);
  // One access-log line per request, in order.
  await v1.waitForStdout(/"GET \/nope HTTP\/1\.1" 404 /);
  const log = v1.stdout().split('\n').slice(1, -1);
  assert.deepEqual(
    log.map((line) => /"(GET \S+) HTTP\/1\.1" (\d+) /.exec(line)?.slice(1).join(' ')),
    ['GET /hello 200', 'GET /health 200', 'GET /nope 404'],
  );
});

test('helloworld: the container env overrides the version; HOSTNAME names the pod when POD_NAME is unset', async () => {
  const app = await startImage('docker.io/istio/examples-helloworld-v1', { SERVICE_VERSION: 'v9', HOSTNAME: 'hello-from-hostname' });
  assert.equal((await get(app.url(5000, '/hello'))).text, 'Hello version: v9, instance: hello-from-hostname\n');
});

test('a request in absolute form, as a forward proxy may pass it, is served by path', async () => {
  const app = await start('helloworld', { POD_NAME: 'helloworld-abs' });
  const body = await new Promise<string>((resolve, reject) => {
    const req = request({ host: app.ip, port: 5000, path: `http://helloworld:5000/hello` }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(body, 'Hello version: v1, instance: helloworld-abs\n');
});

test('sleep only waits, and exits 0 on SIGTERM', async () => {
  const sleep = await start('sleep', { POD_NAME: 'sleep-5577c64d7c-9zg7w' }, / waiting/);
  assert.match(sleep.stdout(), /sleep-5577c64d7c-9zg7w/);
  assert.equal(sleep.child.exitCode, null);
  assert.deepEqual(await sleep.stop(), { code: 0, signal: null });
});

test('reviews v1 answers Istio’s JSON with podname and no ratings', async () => {
  const pod = 'reviews-v1-67896867f4-2rtf4';
  const app = await startImage('docker.io/istio/examples-bookinfo-reviews-v1:1.20.2', { POD_NAME: pod });
  const { status, text } = await get(app.url(9080, '/reviews/1'));
  assert.equal(status, 200);
  // The beginning exactly as the Istio guide shows it.
  assert.ok(text.startsWith(`{"id": "1","podname": "${pod}","clustername": "null","reviews": [`), text);
  const body = JSON.parse(text) as { id: string; podname: string; reviews: { reviewer: string; text: string; rating?: unknown }[] };
  assert.equal(body.id, '1');
  assert.deepEqual(
    body.reviews.map((review) => review.reviewer),
    ['Reviewer1', 'Reviewer2'],
  );
  assert.ok(body.reviews.every((review) => review.rating === undefined && review.text.length > 0));
  assert.deepEqual(await get(app.url(9080, '/health')), { status: 200, text: '{"status": "Reviews is healthy"}' });
  assert.equal((await get(app.url(9080, '/reviews/abc'))).status, 404);
});

test('reviews v2 shows black stars and v3 red stars, each naming its pod', async () => {
  const v2 = await startImage('docker.io/istio/examples-bookinfo-reviews-v2:1.20.2', { POD_NAME: 'reviews-v2-65c9797659-zp6mf' });
  const v3 = await startImage('istio/examples-bookinfo-reviews-v3', { POD_NAME: 'reviews-v3-77947c4c78-7vvkf', CLUSTER_NAME: 'cluster3' });
  type Reviews = { id: string; podname: string; clustername: string; reviews: { rating: { stars: number; color: string } }[] };
  const fromV2 = JSON.parse((await get(v2.url(9080, '/reviews/7'))).text) as Reviews;
  const fromV3 = JSON.parse((await get(v3.url(9080, '/reviews/7'))).text) as Reviews;
  assert.equal(fromV2.id, '7');
  assert.equal(fromV2.podname, 'reviews-v2-65c9797659-zp6mf');
  assert.deepEqual(
    fromV2.reviews.map((review) => review.rating),
    [
      { stars: 5, color: 'black' },
      { stars: 4, color: 'black' },
    ],
  );
  assert.equal(fromV3.podname, 'reviews-v3-77947c4c78-7vvkf');
  assert.equal(fromV3.clustername, 'cluster3');
  assert.deepEqual(
    fromV3.reviews.map((review) => review.rating),
    [
      { stars: 5, color: 'red' },
      { stars: 4, color: 'red' },
    ],
  );
});

test('userlist answers a user record naming the pod; each pod makes up its own users', async () => {
  const a = await startImage('ssongman/userlist:v1', { POD_NAME: 'userlist-74c9c8f969-vstx7' });
  const b = await startImage('ssongman/userlist:v1', { POD_NAME: 'userlist-74c9c8f969-q2wzp' });
  type User = { id: number; name: string; gender: string; image: string; podname: string };
  const first = JSON.parse((await get(a.url(8181, '/users/1'))).text) as User;
  assert.deepEqual(Object.keys(first), ['id', 'name', 'gender', 'image', 'podname']);
  assert.equal(first.id, 1);
  assert.equal(first.gender, 'F');
  assert.equal(first.image, '/assets/image/cat1.jpg');
  assert.equal(first.podname, 'userlist-74c9c8f969-vstx7');
  assert.match(first.name, /^\S+ \S+$/);
  const seventh = JSON.parse((await get(a.url(8181, '/users/7'))).text) as User;
  assert.deepEqual([seventh.gender, seventh.image], ['M', '/assets/image/cat2.jpg']);

  const namesOf = async (app: RunningSample) => ((JSON.parse((await get(app.url(8181, '/users'))).text) as User[]).map((user) => user.name));
  const namesA = await namesOf(a);
  assert.equal(namesA.length, 10);
  assert.notDeepEqual(namesA, await namesOf(b));
  assert.equal((await get(a.url(8181, '/users/42'))).status, 404);
  assert.equal((await get(a.url(8181, '/users/x'))).status, 400);

  // The same pod restarted has the same users.
  await a.stop();
  const again = await startImage('ssongman/userlist:v1', { POD_NAME: 'userlist-74c9c8f969-vstx7' });
  assert.deepEqual(await namesOf(again), namesA);
});

test('podinfo: runtime JSON, probes, status codes, delay and echo', async () => {
  const pod = 'podinfo-5d76864686-m7x7z';
  const app = await startImage('ghcr.io/stefanprodan/podinfo:6.7.0', { POD_NAME: pod, PODINFO_UI_MESSAGE: 'greetings from east' });
  const info = JSON.parse((await get(app.url(9898, '/'))).text) as Record<string, string>;
  assert.equal(info.hostname, pod);
  assert.equal(info.message, 'greetings from east');
  assert.match(info.version ?? '', /^\d+\.\d+\.\d+$/);
  for (const probe of ['/healthz', '/readyz']) assert.deepEqual(await get(app.url(9898, probe)), { status: 200, text: '{"status":"OK"}' });

  assert.deepEqual(await get(app.url(9898, '/status/503')), { status: 503, text: '{"status":503}' });
  assert.deepEqual(await get(app.url(9898, '/status/201')), { status: 201, text: '{"status":201}' });
  assert.equal((await get(app.url(9898, '/status/abc'))).status, 400);
  assert.deepEqual(await get(app.url(9898, '/delay/1')), { status: 200, text: '{"delay":1}' });
  assert.equal((await get(app.url(9898, '/delay/-1'))).status, 400);

  const echoed = await fetch(app.url(9898, '/echo'), { method: 'POST', body: 'ping from west', headers: { 'content-type': 'text/plain' } });
  assert.equal(echoed.status, 202);
  assert.equal(await echoed.text(), 'ping from west');
});

test('podinfo: PODINFO_PORT moves it, and the default message names the version', async () => {
  const app = await start('podinfo', { POD_NAME: 'podinfo-x', PODINFO_PORT: '19898' });
  const info = JSON.parse((await get(app.url(19898, '/'))).text) as Record<string, string>;
  assert.equal(info.message, `greetings from podinfo v${info.version}`);
  assert.match(app.stdout(), /listening on [\d.]+:19898 as podinfo-x/);
});

test('error injector answers 500 naming the pod, for any method and path', async () => {
  const app = await startImage('strait/error-injector', { POD_NAME: 'error-injector-7d9f8-abcde' });
  assert.deepEqual(await get(app.url(8080, '/books/1')), { status: 500, text: 'injected failure from error-injector-7d9f8-abcde\n' });
  assert.equal((await get(app.url(8080, '/'), { method: 'POST', body: 'x' })).status, 500);
});

test('error injector: FAILURE_RATE sets the share of failures; PORT moves it', async () => {
  const never = await start('error-injector', { POD_NAME: 'ei-never', FAILURE_RATE: '0', PORT: '18080' });
  assert.deepEqual(await get(never.url(18080, '/')), { status: 200, text: 'ok from ei-never\n' });

  const half = await start('error-injector', { POD_NAME: 'ei-half', FAILURE_RATE: '0.5' });
  const calls = 400;
  let failures = 0;
  for (let i = 0; i < calls; i++) if ((await get(half.url(8080, '/'))).status === 500) failures++;
  // Binomial(400, 0.5): outside 120..280 has a probability far below 1e-15.
  assert.ok(failures > 120 && failures < 280, `${failures} of ${calls} failed`);
});

test('books: list, one book, slow answers, and injected failures that spare the probe', async () => {
  const app = await startImage('strait/books:latest', { POD_NAME: 'books-6f8b7c-xk2lp' });
  const list = JSON.parse((await get(app.url(7000, '/books'))).text) as { podname: string; books: { id: number; title: string }[] };
  assert.equal(list.podname, 'books-6f8b7c-xk2lp');
  assert.ok(list.books.length >= 3);
  const second = JSON.parse((await get(app.url(7000, '/books/2'))).text) as { id: number; title: string; podname: string };
  assert.deepEqual([second.id, second.title, second.podname], [2, list.books[1]?.title, 'books-6f8b7c-xk2lp']);
  assert.equal((await get(app.url(7000, '/books/99'))).status, 404);
  assert.deepEqual(JSON.parse((await get(app.url(7000, '/slow?ms=50'))).text), { slept_ms: 50, podname: 'books-6f8b7c-xk2lp' });
  assert.equal((await get(app.url(7000, '/slow?ms=soon'))).status, 400);
  // A caller that gives up (as a proxy's timeout does) is logged as aborted.
  await assert.rejects(fetch(app.url(7000, '/slow?ms=60000'), { signal: AbortSignal.timeout(100) }));
  await app.waitForStdout(/"GET \/slow\?ms=60000 HTTP\/1\.1" aborted /);

  const failing = await start('books', { POD_NAME: 'books-failing', FAILURE_RATE: '1' });
  assert.equal((await get(failing.url(7000, '/books'))).status, 500);
  assert.equal((await get(failing.url(7000, '/health'))).status, 200);
});

test('bad settings stop a sample at start with a message naming the variable', async () => {
  const rate = await runUntilExit('error-injector', { FAILURE_RATE: '2' });
  assert.equal(rate.code, 1);
  assert.match(rate.stderr, /error-injector: env FAILURE_RATE must be a number from 0 to 1, got "2"/);
  const port = await runUntilExit('podinfo', { PODINFO_PORT: 'http' });
  assert.equal(port.code, 1);
  assert.match(port.stderr, /podinfo: env PODINFO_PORT must be a port number from 1 to 65535, got "http"/);
  const books = await runUntilExit('books', { FAILURE_RATE: 'often' });
  assert.equal(books.code, 1);
  assert.match(books.stderr, /books: env FAILURE_RATE/);
});

test('a port already taken on the pod address is a clear start-up error', async () => {
  const first = await start('helloworld', { POD_NAME: 'first' });
  const second = await runUntilExit('helloworld', { POD_IP: first.ip, POD_NAME: 'second' });
  assert.equal(second.code, 1);
  assert.match(second.stderr, new RegExp(`helloworld: cannot listen on ${first.ip.replaceAll('.', '\\.')}:5000: EADDRINUSE`));
});

test('SIGTERM: idle keep-alive connections do not hold the sample, in-flight requests finish, exit 0', async () => {
  const app = await start('books', { POD_NAME: 'books-stopping' });
  const agent = new Agent({ keepAlive: true });
  const call = (path: string, onReachedApp?: () => void) =>
    new Promise<{ status: number; connection?: string; body: string }>((resolve, reject) => {
      // With `Expect: 100-continue` the server answers "100 Continue" once it has the request,
      // so the test knows the request is in flight before it stops the sample.
      const headers = onReachedApp ? { expect: '100-continue' } : {};
      const req = request({ host: app.ip, port: 7000, path, agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      });
      req.on('error', reject);
      if (onReachedApp) {
        req.on('continue', () => {
          onReachedApp();
          req.end();
        });
        req.flushHeaders();
      } else {
        req.end();
      }
    });
  // Leaves an idle keep-alive connection behind.
  assert.equal((await call('/books')).status, 200);
  let exit: Promise<unknown> | undefined;
  const slow = await call('/slow?ms=300', () => (exit = app.stop()));
  assert.deepEqual(slow, { status: 200, connection: 'close', body: JSON.stringify({ slept_ms: 300, podname: 'books-stopping' }) });
  assert.deepEqual(await exit, { code: 0, signal: null });
  agent.destroy();
});
