// Stands in for Istio's bookinfo reviews service (docker.io/istio/examples-bookinfo-reviews-v1|v2|v3):
// GET /reviews/<id> on port 9080 answers the JSON the real service answers, naming the pod that
// served it. v1 shows no ratings; v2 and v3 show the ratings service's stars in black and red.
import { podName, runHttpSample, sendJsonText } from './common.js';

// The images set these (see images.ts), as the real images' Dockerfile does.
const version = process.env.SERVICE_VERSION || 'v1';
const ratingsEnabled = process.env.ENABLE_RATINGS === 'true';
const starColor = process.env.STAR_COLOR || 'black';
const pod = podName();
// The real service prints Java's "null" when CLUSTER_NAME is unset, as the Istio guide's output shows.
const clusterName = process.env.CLUSTER_NAME ?? 'null';

// What bookinfo's ratings service answers for every product; there is no ratings service here.
const STARS = { Reviewer1: 5, Reviewer2: 4 };

const REVIEWS = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!', stars: STARS.Reviewer1 },
  {
    reviewer: 'Reviewer2',
    text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.',
    stars: STARS.Reviewer2,
  },
];

/** The body, spaced exactly as the real service writes it (it builds the JSON by hand). */
function reviewsJson(productId: number): string {
  const reviews = REVIEWS.map((review) => {
    const rating = ratingsEnabled ? `, "rating": {"stars": ${review.stars}, "color": ${JSON.stringify(starColor)}}` : '';
    return `{  "reviewer": ${JSON.stringify(review.reviewer)},  "text": ${JSON.stringify(review.text)}${rating}}`;
  });
  return (
    `{"id": "${productId}",` +
    `"podname": ${JSON.stringify(pod)},` +
    `"clustername": ${JSON.stringify(clusterName)},` +
    `"reviews": [${reviews.join(',')}]}`
  );
}

runHttpSample({
  sample: 'reviews',
  describe: version,
  port: 9080,
  handle(req, res, url) {
    if (req.method !== 'GET') return sendJsonText(res, 405, '{"error": "method not allowed"}');
    if (url.pathname === '/health') return sendJsonText(res, 200, '{"status": "Reviews is healthy"}');
    const match = /^\/reviews\/(-?\d+)$/.exec(url.pathname);
    const productId = match ? Number(match[1]) : NaN;
    // The real service takes a Java int path parameter; anything else is not a route there either.
    if (!(productId >= -(2 ** 31) && productId < 2 ** 31)) return sendJsonText(res, 404, '{"error": "not found"}');
    return sendJsonText(res, 200, reviewsJson(productId));
  },
});
