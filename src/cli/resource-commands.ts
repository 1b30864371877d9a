// Commands that read and change resources: apply, create, delete, get, describe, scale, label, annotate.
import type { Command } from 'commander';
import { ignoredFields } from '../api/fields.js';
import { resolveKind, type KindDefinition as KindInfo } from '../api/kinds.js';
import { formatPath } from '../api/issues.js';
import { describeRef, type Resource, type ResourceRef } from '../api/types.js';
import { AdminError } from '../control/admin-client.js';
import { CliError, targetContext, UsageError, type TargetContext } from './context.js';
import { withKubeOptions } from './kube-context.js';
import { readManifests } from './manifests.js';
import { meshCheck } from './mesh-checks.js';
import { describeResource } from './describe.js';
import { printerFor } from './printers.js';
import { toJson, toYaml } from '../api/codec.js';
import { OUTPUT_FORMATS, table, type OutputFormat } from './output.js';

function outputFormat(o: string | undefined): OutputFormat {
  if (o === undefined) return 'table';
  if (!(OUTPUT_FORMATS as string[]).includes(o)) throw new UsageError(`unknown output format "${o}"; use one of: ${OUTPUT_FORMATS.join(', ')}`);
  return o as OutputFormat;
}

/** `deploy/sleep` → kind and name; a bare word is a kind. */
function splitTypeName(arg: string): { kind: KindInfo; name?: string } {
  const slash = arg.indexOf('/');
  if (slash < 0) return { kind: resolveKind(arg) };
  return { kind: resolveKind(arg.slice(0, slash)), name: arg.slice(slash + 1) };
}

/** kubectl's `service/helloworld`, `deployment.apps/helloworld-v1`. */
export function qualifiedName(kind: KindInfo, name: string): string {
  return `${kind.singular}${kind.group ? `.${kind.group}` : ''}/${name}`;
}

function refFor(ctx: TargetContext, kind: KindInfo, name: string): ResourceRef {
  return kind.namespaced ? { kind: kind.kind, namespace: ctx.namespace, name } : { kind: kind.kind, name };
}

/** Reports the objects a refused apply named, and exits 1 without changing anything. */
function refused(err: unknown): never {
  if (err instanceof AdminError && err.details.length > 0) throw new CliError(err.message, 1, err.details);
  throw err;
}

export function registerResourceCommands(program: Command): void {
  withKubeOptions(program.command('apply'))
    .description('create or update resources from files, a directory, or stdin (-); all or nothing')
    .requiredOption('-f, --filename <paths...>', 'manifest file(s), directories, or - for stdin')
    .option('-l, --selector <selector>', 'apply only the objects whose labels match, e.g. service=reviews')
    .option('-R, --recursive', 'read directories recursively')
    .option('--dry-run', 'validate and show what would change, change nothing')
    .action(async (opts: { filename: string[]; selector?: string; recursive?: boolean; dryRun?: boolean }, cmd: Command) => {
      const ctx = await targetContext(cmd);
      const objects = await readManifests(opts.filename, {
        namespace: ctx.namespaceGiven ? ctx.namespace : undefined,
        selector: opts.selector,
        recursive: opts.recursive,
        check: meshCheck(ctx),
      });
      if (objects.length === 0) throw new CliError(`no objects passed to apply${opts.selector ? ` (none matched selector ${opts.selector})` : ''}`);
      const results = await ctx.client.apply(objects, opts.dryRun).catch(refused);
      for (const r of results) {
        const kind = resolveKind(r.object.kind);
        console.log(`${qualifiedName(kind, r.object.metadata.name)} ${opts.dryRun ? 'valid (dry run)' : r.outcome}`);
      }
    });

  const create = program.command('create').description('create a resource from the command line');
  withKubeOptions(create.command('namespace'))
    .alias('ns')
    .description('create a namespace')
    .argument('<name>')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const ctx = await targetContext(cmd);
      const ns: Resource = { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
      const objects = await readManifests([], { documents: [ns] });
      if (await ctx.client.get({ kind: 'Namespace', name })) throw new CliError(`namespaces "${name}" already exists`);
      await ctx.client.apply(objects).catch(refused);
      console.log(`namespace/${name} created`);
    });
  withKubeOptions(create.command('deployment'))
    .alias('deploy')
    .description('create a deployment running an image, as kubectl create deployment does (the command after --)')
    .argument('<name>')
    .argument('[command...]', 'the command and its arguments, after --')
    .requiredOption('--image <image>', 'the container image (a known sample image, or any command to run)')
    .option('--replicas <n>', 'how many pods', '1')
    .option('--port <port>', 'the containerPort the app listens on')
    .action(async (name: string, command: string[], opts: { image: string; replicas: string; port?: string }, cmd: Command) => {
      const ctx = await targetContext(cmd);
      const deployment = deploymentFor(name, ctx.namespace, opts, command);
      const objects = await readManifests([], { documents: [deployment] });
      if (await ctx.client.get({ kind: 'Deployment', namespace: ctx.namespace, name })) throw new CliError(`deployments.apps "${name}" already exists`);
      await ctx.client.apply(objects).catch(refused);
      console.log(`deployment.apps/${name} created`);
    });

  withKubeOptions(program.command('delete'))
    .description('delete resources by file, or by kind and name(s) or selector')
    .argument('[type]', 'kind, or kind/name')
    .argument('[names...]', 'names')
    .option('-f, --filename <paths...>', 'delete the objects these manifests describe')
    .option('-l, --selector <selector>', 'delete every object of the kind whose labels match')
    .option('--all', 'delete every object of the kind in the namespace')
    .option('--ignore-not-found', 'treat "not found" as success')
    .action(async (type: string | undefined, names: string[], opts: { filename?: string[]; selector?: string; all?: boolean; ignoreNotFound?: boolean }, cmd: Command) => {
      const ctx = await targetContext(cmd);
      let refs: { ref: ResourceRef; kind: KindInfo }[];
      if (opts.filename) {
        const objects = await readManifests(opts.filename, { namespace: ctx.namespaceGiven ? ctx.namespace : undefined, selector: opts.selector });
        refs = objects.map((o) => ({ kind: resolveKind(o.kind), ref: { kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name } }));
      } else {
        if (!type) throw new UsageError('say what to delete: strait delete -f FILE, or strait delete KIND NAME');
        const { kind, name } = splitTypeName(type);
        const all = name ? [name, ...names] : names;
        if (all.length === 0) {
          if (!opts.selector && !opts.all) throw new UsageError(`name the ${kind.plural} to delete, or use -l SELECTOR or --all`);
          const list = await ctx.client.list(kind.kind, { namespace: kind.namespaced ? ctx.namespace : undefined, selector: opts.selector });
          refs = list.items.map((o) => ({ kind, ref: refFor(ctx, kind, o.metadata.name) }));
        } else refs = all.map((n) => ({ kind, ref: refFor(ctx, kind, n) }));
      }
      const results = await ctx.client.delete(refs.map((r) => r.ref));
      let missing = 0;
      results.forEach((r, i) => {
        const name = qualifiedName(refs[i]!.kind, r.ref.name);
        if (r.deleted) console.log(`${name} deleted`);
        else if (!opts.ignoreNotFound) {
          missing++;
          console.error(`Error: ${refs[i]!.kind.plural} "${r.ref.name}" not found${r.ref.namespace ? ` in namespace "${r.ref.namespace}"` : ''}`);
        }
      });
      if (missing > 0) process.exitCode = 1;
      else if (results.length === 0) console.log('No resources found');
    });

  withKubeOptions(program.command('get'))
    .description('list resources: pods, deploy, sts, svc, ns, sa, trafficsplit, serviceprofile, all')
    .argument('<type>', 'kind (comma-separated kinds, or kind/name)')
    .argument('[names...]', 'names')
    .option('-A, --all-namespaces', 'list across all namespaces')
    .option('-l, --selector <selector>', 'only objects whose labels match')
    .option('-o, --output <format>', 'wide, json, yaml or name')
    .action(async (type: string, names: string[], opts: { allNamespaces?: boolean; selector?: string; output?: string }, cmd: Command) => {
      const ctx = await targetContext(cmd);
      const format = outputFormat(opts.output);
      const kinds = type === 'all' ? ['pods', 'services', 'deployments', 'statefulsets'].map((t): { kind: KindInfo; name?: string } => ({ kind: resolveKind(t) })) : type.split(',').map(splitTypeName);
      const found: { kind: KindInfo; items: Resource[] }[] = [];
      const missing: string[] = [];
      for (const entry of kinds) {
        const { kind, name } = entry;
        const wanted = name ? [name, ...names] : names;
        let items: Resource[];
        if (wanted.length > 0) {
          items = [];
          for (const n of wanted) {
            const obj = await ctx.client.get(refFor(ctx, kind, n));
            if (obj) items.push(obj);
            else missing.push(`${kind.plural} "${n}" not found${kind.namespaced ? ` in namespace "${ctx.namespace}"` : ''}`);
          }
        } else {
          const namespace = kind.namespaced && !opts.allNamespaces ? ctx.namespace : undefined;
          items = (await ctx.client.list(kind.kind, { namespace, selector: opts.selector })).items;
        }
        found.push({ kind, items });
      }
      const all = found.flatMap((f) => f.items);
      if (format === 'json' || format === 'yaml') {
        // One named object prints as itself, anything else as a List, as kubectl does.
        const single = kinds.length === 1 && names.length + (kinds[0]?.name ? 1 : 0) === 1 && all.length === 1;
        const value = single ? all[0] : { apiVersion: 'v1', kind: 'List', items: all };
        console.log(format === 'json' ? toJson(value) : toYaml(value).trimEnd());
      } else if (format === 'name') {
        for (const f of found) for (const o of f.items) console.log(qualifiedName(f.kind, o.metadata.name));
      } else {
        const now = Date.now();
        const sections = found.filter((f) => f.items.length > 0).map((f) => {
          const p = printerFor(f.kind.kind);
          const wide = format === 'wide';
          const prefix = found.length > 1 ? `${qualifiedName(f.kind, '')}` : '';
          const headers = [...(opts.allNamespaces && f.kind.namespaced ? ['NAMESPACE'] : []), ...p.headers, ...(wide ? (p.wideHeaders ?? []) : [])];
          const rows = f.items.map((o) => [
            ...(opts.allNamespaces && f.kind.namespaced ? [o.metadata.namespace ?? ''] : []),
            ...p.row(o, now).map((c, i) => (i === 0 ? prefix + String(c) : c)),
            ...(wide && p.wideRow ? p.wideRow(o, ctx.name) : []),
          ]);
          return table(headers, rows);
        });
        if (sections.length) console.log(sections.join('\n\n'));
        else if (missing.length === 0) console.error(`No resources found${opts.allNamespaces ? '' : ` in ${ctx.namespace} namespace`}.`);
      }
      for (const m of missing) console.error(`Error from server (NotFound): ${m}`);
      if (missing.length > 0) process.exitCode = 1;
    });

  withKubeOptions(program.command('describe'))
    .description('show one resource in detail, with the fields the local runtime ignores')
    .argument('<type>', 'kind, or kind/name')
    .argument('[names...]', 'names')
    .option('-l, --selector <selector>', 'every object of the kind whose labels match')
    .action(async (type: string, names: string[], opts: { selector?: string }, cmd: Command) => {
      const ctx = await targetContext(cmd);
      const { kind, name } = splitTypeName(type);
      const wanted = name ? [name, ...names] : names;
      const objects = wanted.length
        ? await Promise.all(wanted.map(async (n) => {
            const o = await ctx.client.get(refFor(ctx, kind, n));
            if (!o) throw new CliError(`${kind.plural} "${n}" not found${kind.namespaced ? ` in namespace "${ctx.namespace}"` : ''}`);
            return o;
          }))
        : (await ctx.client.list(kind.kind, { namespace: kind.namespaced ? ctx.namespace : undefined, selector: opts.selector })).items;
      const texts = await Promise.all(objects.map((o) => describeResource(ctx, o, ignoredFields(o))));
      console.log(texts.join('\n\n'));
    });

  withKubeOptions(program.command('scale'))
    .description('set the replicas of a Deployment or StatefulSet')
    .argument('<target...>', 'deploy/NAME, or deploy NAME')
    .requiredOption('--replicas <n>', 'the new number of replicas')
    .action(async (target: string[], opts: { replicas: string }, cmd: Command) => {
      const ctx = await targetContext(cmd);
      const replicas = Number(opts.replicas);
      if (!Number.isInteger(replicas) || replicas < 0) throw new UsageError(`--replicas must be a whole number >= 0, got "${opts.replicas}"`);
      const { kind, name } = targetOf(target);
      if (kind.kind !== 'Deployment' && kind.kind !== 'StatefulSet') throw new UsageError(`cannot scale ${kind.plural}; scale a deployment or a statefulset`);
      const obj = await mustGet(ctx, kind, name);
      const spec = { ...(obj.spec as object), replicas };
      await ctx.client.apply([{ ...obj, spec }]).catch(refused);
      console.log(`${qualifiedName(kind, name)} scaled`);
    });

  for (const field of ['labels', 'annotations'] as const) {
    const verb = field === 'labels' ? 'label' : 'annotate';
    withKubeOptions(program.command(verb))
      .description(`add, change (--overwrite) or remove (key-) ${field} of a resource`)
      .argument('<type>', 'kind, or kind/name')
      .argument('<args...>', `[name] key=value ... key-`)
      .option('--overwrite', 'allow changing an existing value')
      .action(async (type: string, args: string[], opts: { overwrite?: boolean }, cmd: Command) => {
        const ctx = await targetContext(cmd);
        const split = splitTypeName(type);
        const name = split.name ?? args.shift();
        if (!name) throw new UsageError(`name the resource: strait ${verb} ${type} NAME key=value`);
        if (args.length === 0) throw new UsageError(`give at least one key=value or key- to ${verb}`);
        const obj = await mustGet(ctx, split.kind, name);
        const current = { ...(obj.metadata[field] ?? {}) };
        for (const a of args) {
          if (a.endsWith('-') && !a.includes('=')) {
            delete current[a.slice(0, -1)];
            continue;
          }
          const eq = a.indexOf('=');
          if (eq <= 0) throw new UsageError(`"${a}" is neither key=value nor key-`);
          const key = a.slice(0, eq);
          const value = a.slice(eq + 1);
          if (current[key] !== undefined && current[key] !== value && !opts.overwrite) {
            throw new CliError(`'${key}' already has a value (${current[key]}), and --overwrite is false`);
          }
          current[key] = value;
        }
        // Without the status: it is the control plane's to write (the store keeps it), and a pod's is not a manifest's.
        const { status: _status, ...desired } = obj;
        const changed = { ...desired, metadata: { ...obj.metadata, [field]: current } };
        const problems = await meshCheck(ctx)(changed);
        if (problems.length > 0) throw new CliError(`${qualifiedName(split.kind, name)} was not ${verb === 'label' ? 'labeled' : 'annotated'}; nothing was changed:`, 1, problems.map((p) => `${formatPath(p.path)}: ${p.reason}`));
        const [result] = await ctx.client.apply([changed]).catch(refused);
        const done = field === 'labels' ? 'labeled' : 'annotated';
        console.log(`${qualifiedName(split.kind, name)} ${result?.outcome === 'unchanged' ? 'not ' + done : done}`);
      });
  }
}

function targetOf(target: string[]): { kind: KindInfo; name: string } {
  const [first, second] = target;
  const split = splitTypeName(first!);
  const name = split.name ?? second;
  if (!name) throw new UsageError('name what to scale: strait scale deploy/NAME --replicas N');
  return { kind: split.kind, name };
}

async function mustGet(ctx: TargetContext, kind: KindInfo, name: string): Promise<Resource> {
  const ref = refFor(ctx, kind, name);
  const obj = await ctx.client.get(ref);
  if (!obj) throw new CliError(`${describeRef(ref)} not found in ${ctx.kube ? 'context' : 'cluster'} ${ctx.name}`);
  return obj;
}

/**
 * The Deployment `kubectl create deployment` writes: label `app: <name>`, one container named after
 * the image (`curlimages/curl:8.1` → `curl`). Numbers are checked by the manifest validation after.
 */
export function deploymentFor(name: string, namespace: string, opts: { image: string; replicas: string; port?: string }, command: string[]): Resource {
  const replicas = Number(opts.replicas);
  if (!/^\d+$/.test(opts.replicas)) throw new UsageError(`--replicas must be a whole number, got "${opts.replicas}"`);
  if (opts.port !== undefined && !/^\d+$/.test(opts.port)) throw new UsageError(`--port must be a port number, got "${opts.port}"`);
  const container = opts.image.split('/').pop()!.split(/[:@]/)[0]!.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: container,
              image: opts.image,
              ...(command.length > 0 ? { command } : {}),
              ...(opts.port !== undefined ? { ports: [{ containerPort: Number(opts.port) }] } : {}),
            },
          ],
        },
      },
    },
  };
}
