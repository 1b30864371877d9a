// A small books service for the timeout, retry and per-route metrics scenarios (like the books
// service of Linkerd's booksapp): on port 7000, GET /books, GET /books/<id>, and GET /slow?ms=N,
// which answers after N ms. Env FAILURE_RATE (0..1, default 0) fails that share of requests with 500.
import { envRate, podName, runHttpSample, sendJson, waitUnlessClosed } from './common.js';

const pod = podName();
const failureRate = envRate('books', 'FAILURE_RATE', 0);

const BOOKS = [
  { id: 1, title: 'The Tempest', author: 'William Shakespeare', pages: 128 },
  { id: 2, title: 'Pride and Prejudice', author: 'Jane Austen', pages: 432 },
  { id: 3, title: 'Moby-Dick', author: 'Herman Melville', pages: 635 },
  { id: 4, title: 'The Left Hand of Darkness', author: 'Ursula K. Le Guin', pages: 304 },
  { id: 5, title: 'Things Fall Apart', author: 'Chinua Achebe', pages: 209 },
];

runHttpSample({
  sample: 'books',
  describe: `failure rate ${failureRate}`,
  port: 7000,
  async handle(req, res, url) {
    const path = url.pathname;
    // Probes are never failed on purpose, or the runtime would restart the pod.
    if (path === '/health') return sendJson(res, 200, { status: 'ok', podname: pod });
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'method not allowed', podname: pod });
    if (Math.random() < failureRate) return sendJson(res, 500, { error: 'injected failure', podname: pod });

    if (path === '/books') return sendJson(res, 200, { podname: pod, books: BOOKS });
    const bookId = /^\/books\/([^/]+)$/.exec(path);
    if (bookId) {
      const book = BOOKS.find((candidate) => String(candidate.id) === bookId[1]);
      if (!book) return sendJson(res, 404, { error: `no book ${bookId[1]}`, podname: pod });
      return sendJson(res, 200, { ...book, podname: pod });
    }
    if (path === '/slow') {
      const raw = url.searchParams.get('ms') ?? '0';
      const ms = Number(raw);
      if (!Number.isInteger(ms) || ms < 0) return sendJson(res, 400, { error: `ms must be a whole number of milliseconds, got ${JSON.stringify(raw)}`, podname: pod });
      if (await waitUnlessClosed(res, ms)) sendJson(res, 200, { slept_ms: ms, podname: pod });
      return;
    }
    return sendJson(res, 404, { error: 'not found', podname: pod });
  },
});
