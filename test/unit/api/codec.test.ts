// Reading manifest text into documents, and printing objects back as YAML and JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listOf, parseManifests, toDocuments, toJson, toYaml } from '../../../src/api/codec.js';
import { ManifestError } from '../../../src/api/issues.js';

/** The ManifestError that `fn` throws. */
function manifestError(fn: () => unknown): ManifestError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ManifestError');
}

test('multi-document YAML: each object remembers its file and position; empty documents are skipped but counted', () => {
  const text = [
    '# a leading comment',
    'apiVersion: v1',
    'kind: Namespace',
    'metadata: {name: a}',
    '---',
    '---',
    '# only a comment',
    '---',
    'apiVersion: v1',
    'kind: Namespace',
    'metadata: {name: b}',
    '---',
    '',
  ].join('\n');
  const docs = parseManifests(text, 'ns.yaml');
  assert.deepEqual(
    docs.map((d) => [d.source, d.index, (d.body as { metadata: { name: string } }).metadata.name]),
    [
      ['ns.yaml', 0, 'a'],
      ['ns.yaml', 3, 'b'],
    ],
  );
});

test('YAML is read as kubectl reads it (1.1): yes/no are booleans, timestamps stay strings, null fields are dropped', () => {
  const [doc] = parseManifests('a: yes\nb: "yes"\nc: 2023-01-01T00:00:00Z\nd: 500m\nmetadata:\n  creationTimestamp: null\n  annotations:\n', 'x.yaml');
  assert.deepEqual(doc!.body, { a: true, b: 'yes', c: '2023-01-01T00:00:00Z', d: '500m', metadata: {} });
});

test('JSON: a single object, and a List whose items become documents numbered by item', () => {
  const single = parseManifests('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}', 'a.json');
  assert.equal(single.length, 1);
  assert.deepEqual(single[0]!.body, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } });

  const list = parseManifests(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'b' } },
      ],
    }),
    'list.json',
  );
  assert.deepEqual(
    list.map((d) => [d.index, d.item]),
    [
      [0, 0],
      [0, 1],
    ],
  );
  // `kubectl get -o yaml` writes typed lists too.
  const typed = parseManifests('apiVersion: v1\nkind: ServiceList\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s}}\n', 'svc.yaml');
  assert.equal(typed.length, 1);
  assert.equal((typed[0]!.body as { kind: string }).kind, 'Service');
});

test('malformed YAML names the file, the document, the line and the column', () => {
  const text = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: [b\n';
  const err = manifestError(() => parseManifests(text, 'broken.yaml'));
  assert.equal(err.issues.length, 1);
  const issue = err.issues[0]!;
  assert.equal(issue.source, 'broken.yaml');
  assert.equal(issue.index, 1);
  assert.equal(issue.line, 9);
  assert.match(issue.format(), /^broken\.yaml: document 2: line 9, column \d+: .*flow sequence/i);
  assert.ok(!issue.format().includes('\n'), 'one line per issue');
});

test('every malformed document is reported, not only the first', () => {
  const text = 'a: b: c\n---\nok: 1\n---\nk: v\nk: w\n';
  const err = manifestError(() => parseManifests(text, 'two.yaml'));
  assert.deepEqual(
    err.issues.map((i) => [i.index, i.line]),
    [
      [0, 1],
      [2, 6],
    ],
  );
  assert.match(err.issues[1]!.reason, /unique/);
  assert.equal(err.message.split('\n').length, 2);
});

test('a document that is not an object is an error', () => {
  const err = manifestError(() => parseManifests('- a\n- b\n', 'list.yaml'));
  assert.equal(err.issues[0]!.format(), 'list.yaml: document 1: expected an object with apiVersion and kind, got a list');
  const scalar = manifestError(() => parseManifests('apiVersion: v1\n---\njust text\n', 'text.yaml'));
  assert.equal(scalar.issues[0]!.format(), 'text.yaml: document 2: expected an object with apiVersion and kind, got "just text"');
});

test('empty input has no documents', () => {
  assert.deepEqual(parseManifests('', 'empty.yaml'), []);
  assert.deepEqual(parseManifests('# nothing\n---\n', 'empty.yaml'), []);
});

test('toYaml and toJson print apiVersion, kind, metadata, spec, status first and read back the same', () => {
  const obj = {
    status: { phase: 'Running' },
    spec: { containers: [{ name: 'c', image: 'i', env: [{ name: 'FLAG', value: 'yes' }] }] },
    metadata: { name: 'p', namespace: 'default' },
    kind: 'Pod',
    apiVersion: 'v1',
  };
  const yaml = toYaml(obj);
  assert.match(yaml, /^apiVersion: v1\nkind: Pod\nmetadata:\n {2}name: p\n {2}namespace: default\nspec:\n {2}containers:\n {2}- name: c\n/);
  assert.ok(yaml.indexOf('status:') > yaml.indexOf('spec:'));
  // "yes" must stay a string for a YAML 1.1 reader.
  assert.match(yaml, /value: "yes"/);
  assert.deepEqual(parseManifests(yaml, '-')[0]!.body, obj);

  const json = toJson(obj);
  assert.deepEqual(Object.keys(JSON.parse(json) as object), ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  assert.match(json, /^\{\n {4}"apiVersion": "v1",/);
  assert.deepEqual(parseManifests(json, '-')[0]!.body, obj);
});

test('listOf wraps objects the way kubectl prints a list, and reads back as its items', () => {
  const items = [
    { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'a' } },
    { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'b' } },
  ];
  const yaml = toYaml(listOf(items));
  assert.match(yaml, /^apiVersion: v1\nkind: List\n/);
  assert.deepEqual(
    parseManifests(yaml, '-').map((d) => d.body),
    items.map((i) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: i.metadata })),
  );
});

test('toDocuments numbers objects that did not come from text', () => {
  const docs = toDocuments([{ a: 1, b: null }, { c: 2 }], 'api');
  assert.deepEqual(docs, [
    { source: 'api', index: 0, body: { a: 1 } },
    { source: 'api', index: 1, body: { c: 2 } },
  ]);
});
