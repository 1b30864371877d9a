// Which container images the local runtime runs as a sample app from this folder, so the guides'
// manifests work unchanged. An image is matched on its repository path, whatever the registry
// (docker.io, ghcr.io, a mirror), tag or digest.
import { fileURLToPath } from 'node:url';

export interface SampleImage {
  /** The sample's name, e.g. `helloworld`. */
  sample: string;
  /** Absolute path of the compiled sample (`dist/samples/<sample>.js`), to run with `node`. */
  script: string;
  /** Environment the real image sets; the container's own env is applied over it, as in a container. */
  env?: Record<string, string>;
  /** The ports the sample listens on by default (on POD_IP). */
  ports: number[];
}

/** A parsed image reference, normalized as Docker does (`curlimages/curl` is `docker.io/curlimages/curl`). */
export interface ImageReference {
  registry: string;
  /** The path inside the registry, e.g. `istio/examples-helloworld-v1`, `library/nginx`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export class ImageReferenceError extends Error {}

const DEFAULT_REGISTRY = 'docker.io';
// The grammar of github.com/distribution/reference.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const REGISTRY = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const MAX_NAME_LENGTH = 255;

/** Parse `[registry/]path[:tag][@digest]`; throws ImageReferenceError saying what is wrong. */
export function parseImageReference(image: string): ImageReference {
  const invalid = (reason: string) => new ImageReferenceError(`invalid image reference ${JSON.stringify(image)}: ${reason}`);
  if (image === '') throw invalid('it is empty');
  if (/\s/.test(image)) throw invalid('it contains white space');

  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(`digest ${JSON.stringify(digest)} is not algorithm:hex (e.g. sha256:<64 hex digits>)`);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(`tag ${JSON.stringify(tag)} must be 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`);
  }

  if (rest.length > MAX_NAME_LENGTH) throw invalid(`the name is longer than ${MAX_NAME_LENGTH} characters`);
  const components = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  // As Docker decides: the first component is a registry if it looks like a host (has '.' or ':',
  // or is localhost, or has capitals, which a path never has).
  const first = components[0] ?? '';
  if (components.length > 1 && (/[.:A-Z]/.test(first) || first === 'localhost')) {
    if (!REGISTRY.test(first)) throw invalid(`registry ${JSON.stringify(first)} is not a host name with an optional port`);
    const host = first.toLowerCase();
    registry = host === 'index.docker.io' ? DEFAULT_REGISTRY : host;
    components.shift();
  }
  for (const component of components) {
    if (component === '') throw invalid('the repository path has an empty component');
    if (component !== component.toLowerCase()) throw invalid(`repository path component ${JSON.stringify(component)} must be lower case`);
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(`repository path component ${JSON.stringify(component)} may only contain a-z, 0-9 and single separators ('.', '_', '__', '-')`);
    }
  }
  // Docker Hub's official images live under library/.
  if (registry === DEFAULT_REGISTRY && components.length === 1) components.unshift('library');

  const reference: ImageReference = { registry, repository: components.join('/') };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

const SAMPLE_PORTS: Record<string, number[]> = {
  helloworld: [5000],
  sleep: [],
  reviews: [9080],
  userlist: [8181],
  podinfo: [9898],
  'error-injector': [8080],
  books: [7000],
  // Its ports are whatever its nginx.conf listens on: ready once it runs, as a container without probes.
  nginx: [],
};

/** What the reviews images bake in (Istio's reviews Dockerfile build arguments). */
function reviewsEnv(version: string): Record<string, string> {
  const stars: Record<string, string> = { v1: 'black', v2: 'black', v3: 'red' };
  return { SERVICE_VERSION: version, ENABLE_RATINGS: String(version !== 'v1'), STAR_COLOR: stars[version] ?? 'black' };
}

interface ImageRule {
  /** Matched against the end of the repository path, whole components only. */
  path: RegExp;
  /** How this rule is listed in knownSampleImages(). */
  shown: string[];
  sample: (match: RegExpExecArray) => string;
  env?: (match: RegExpExecArray) => Record<string, string>;
}

const SAMPLE_NAMES = Object.keys(SAMPLE_PORTS);

const RULES: ImageRule[] = [
  {
    path: /(?:^|\/)istio\/examples-helloworld-(v\d+)$/,
    shown: ['docker.io/istio/examples-helloworld-v1', 'docker.io/istio/examples-helloworld-v2'],
    sample: () => 'helloworld',
    env: (match) => ({ SERVICE_VERSION: match[1] ?? 'v1' }),
  },
  {
    path: /(?:^|\/)istio\/examples-bookinfo-reviews-(v[123])$/,
    shown: ['docker.io/istio/examples-bookinfo-reviews-v1', 'docker.io/istio/examples-bookinfo-reviews-v2', 'docker.io/istio/examples-bookinfo-reviews-v3'],
    sample: () => 'reviews',
    env: (match) => reviewsEnv(match[1] ?? 'v1'),
  },
  { path: /(?:^|\/)curlimages\/curl$/, shown: ['curlimages/curl'], sample: () => 'sleep' },
  // This machine's nginx, with the pod's nginx.conf (samples/nginx.ts).
  { path: /(?:^|\/)library\/nginx$/, shown: ['nginx'], sample: () => 'nginx' },
  { path: /(?:^|\/)ssongman\/userlist$/, shown: ['ssongman/userlist'], sample: () => 'userlist' },
  { path: /(?:^|\/)stefanprodan\/podinfo$/, shown: ['stefanprodan/podinfo', 'ghcr.io/stefanprodan/podinfo'], sample: () => 'podinfo' },
  {
    path: new RegExp(`(?:^|/)strait/(${SAMPLE_NAMES.join('|')})$`),
    shown: SAMPLE_NAMES.map((name) => `strait/${name}`),
    sample: (match) => match[1] ?? '',
  },
];

/** The compiled sample beside this module; from the TypeScript source (tests), the one in dist/. */
function scriptPath(sample: string): string {
  const compiled = import.meta.url.endsWith('.ts') ? `../dist/samples/${sample}.js` : `./${sample}.js`;
  return fileURLToPath(new URL(compiled, import.meta.url));
}

/**
 * The sample app that stands in for `image`, or undefined when no sample does.
 * Throws ImageReferenceError when `image` is not a valid image reference.
 */
export function resolveSampleImage(image: string): SampleImage | undefined {
  const { repository } = parseImageReference(image);
  for (const rule of RULES) {
    const match = rule.path.exec(repository);
    if (!match) continue;
    const sample = rule.sample(match);
    const resolved: SampleImage = { sample, script: scriptPath(sample), ports: [...(SAMPLE_PORTS[sample] ?? [])] };
    if (rule.env) resolved.env = rule.env(match);
    return resolved;
  }
  return undefined;
}

/** The images that run a sample app, for an error message about an image that does not. */
export function knownSampleImages(): string[] {
  return RULES.flatMap((rule) => rule.shown);
}
