// Stands in for ssongman/userlist:v1, the Cilium blog's sample: GET /users/<id> on port 8181 answers
// a user record, {"id":1,"name":"…","gender":"F","image":"/assets/image/cat1.jpg"}, plus the pod
// that served it. Like the real app, each instance makes up its own ten users at start, so two pods
// answer with different names; here the names are derived from the pod name, so they are stable
// across restarts.
import { podName, runHttpSample, sendJson } from './common.js';

const pod = podName();

const FIRST_NAMES = ['Ivory', 'Marlon', 'Hollis', 'Jazmyne', 'Noemi', 'Albertha', 'Ervin', 'Clementine', 'Dayna', 'Kurtis', 'Leanne', 'Glenna', 'Nicholas', 'Chelsey', 'Ronaldo', 'Maxime'];
const LAST_NAMES = ['Leffler', 'Wisozk', 'Lehner', 'Klein', 'Abbott', 'Schumm', 'Howell', 'Bauch', 'Lebsack', 'Dietrich', 'Weissnat', 'Runolfsdottir', 'Reichert', 'Graham', 'Kuphal', 'Stanton'];

/** A small deterministic generator (FNV-1a seed, xorshift steps) so a pod's names do not change. */
function generator(seed: string): () => number {
  let state = 0x811c9dc5;
  for (const char of seed) state = Math.imul(state ^ char.charCodeAt(0), 0x01000193) >>> 0;
  if (state === 0) state = 1; // xorshift never leaves 0
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

interface User {
  id: number;
  name: string;
  gender: string;
  image: string;
  podname: string;
}

const next = generator(pod);
const users: User[] = Array.from({ length: 10 }, (_, i) => ({
  id: i + 1,
  name: `${FIRST_NAMES[next() % FIRST_NAMES.length]} ${LAST_NAMES[next() % LAST_NAMES.length]}`,
  // The same gender and picture rules as the real app.
  gender: i > 5 ? 'M' : 'F',
  image: `/assets/image/cat${(i % 5) + 1}.jpg`,
  podname: pod,
}));

runHttpSample({
  sample: 'userlist',
  port: 8181,
  handle(req, res, url) {
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'method not allowed', podname: pod });
    if (url.pathname === '/users') return sendJson(res, 200, users);
    const match = /^\/users\/([^/]+)$/.exec(url.pathname);
    if (!match) return sendJson(res, 404, { error: 'not found', podname: pod });
    const id = Number(match[1]);
    if (!Number.isInteger(id)) return sendJson(res, 400, { error: `user id must be a number, got ${JSON.stringify(match[1])}`, podname: pod });
    const user = users.find((candidate) => candidate.id === id);
    if (!user) return sendJson(res, 404, { error: `no user ${id}`, podname: pod });
    return sendJson(res, 200, user);
  },
});
