// What is wrong with a manifest, and where: the file, the document, the object, the field.

export type FieldPath = readonly (string | number)[];

/** Where a document came from: its file (or `-` for stdin) and its position there. */
export interface DocumentOrigin {
  /** File path, or `-` for standard input. */
  source: string;
  /** 0-based position in the file's YAML stream; empty documents count (see codec.ts). */
  index: number;
  /** 0-based position inside a `List` document's `items`, when the object came from one. */
  item?: number;
}

export interface IssueDetails extends DocumentOrigin {
  kind?: string;
  name?: string;
  /** Field path, e.g. `["spec", "template", "spec", "containers", 0, "image"]`; empty for the whole object. */
  path?: FieldPath;
  /** 1-based line and column, for syntax errors. */
  line?: number;
  column?: number;
  reason: string;
}

/** One problem in a manifest. `format()` prints it the way every Strait command shows it. */
export class ManifestIssue implements IssueDetails {
  readonly source: string;
  readonly index: number;
  readonly item?: number;
  readonly kind?: string;
  readonly name?: string;
  readonly path: FieldPath;
  readonly line?: number;
  readonly column?: number;
  readonly reason: string;

  constructor(details: IssueDetails) {
    this.source = details.source;
    this.index = details.index;
    this.item = details.item;
    this.kind = details.kind;
    this.name = details.name;
    this.path = details.path ?? [];
    this.line = details.line;
    this.column = details.column;
    this.reason = details.reason;
  }

  /** e.g. `bookinfo.yaml: document 3 (Deployment reviews-v1): spec.replicas: must be >= 0, got -1`. */
  format(): string {
    let where = `${this.source}: ${describeOrigin(this)}`;
    const object = [this.kind, this.name].filter((s) => s !== undefined && s !== '').join(' ');
    if (object) where += ` (${object})`;
    if (this.line !== undefined) where += `: line ${this.line}, column ${this.column ?? 1}`;
    if (this.path.length > 0) where += `: ${formatPath(this.path)}`;
    return `${where}: ${this.reason}`;
  }
}

/** `document 3` or `document 1, item 2`, 1-based as people count. */
export function describeOrigin(origin: DocumentOrigin): string {
  const doc = `document ${origin.index + 1}`;
  return origin.item === undefined ? doc : `${doc}, item ${origin.item + 1}`;
}

/** Thrown when manifests are rejected; carries every issue found, not just the first. */
export class ManifestError extends Error {
  constructor(readonly issues: readonly ManifestIssue[]) {
    super(issues.map((i) => i.format()).join('\n'));
    this.name = 'ManifestError';
  }
}

/** `spec.template.spec.containers[0].image`; keys that are not plain words are quoted: `metadata.labels["app.kubernetes.io/name"]`. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}
