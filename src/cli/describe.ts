// `strait describe`: one object in detail, as kubectl describes it, plus what the local runtime ignores.
import type { Resource } from '../api/types.js';
import { matchesSelector } from '../api/labels.js';
import type { TargetContext } from './context.js';
import { podReady, podStatus } from './printers.js';
import { toYaml } from '../api/codec.js';

type Line = [label: string, value: string];

function block(lines: Line[], indent = ''): string {
  const width = Math.max(0, ...lines.map(([l]) => l.length)) + 2;
  return lines
    .map(([label, value]) => {
      const [first = '', ...rest] = value.split('\n');
      const pad = ' '.repeat(indent.length + width);
      return `${indent}${(label + ':').padEnd(width)}${first}${rest.map((r) => `\n${pad}${r}`).join('')}`;
    })
    .join('\n');
}

function mapLines(m: Record<string, string> | undefined, sep: string): string {
  const entries = Object.entries(m ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}${sep}${v}`).join('\n') : '<none>';
}

interface ContainerLike {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: { containerPort: number; protocol?: string; name?: string }[];
  env?: { name: string; value?: string }[];
}
interface ContainerStatusLike {
  name: string;
  ready?: boolean;
  restartCount?: number;
  state?: Record<string, { startedAt?: string; reason?: string; message?: string; exitCode?: number } | undefined>;
}

function containers(list: ContainerLike[], statuses: ContainerStatusLike[] = []): string {
  return list
    .map((c) => {
      const st = statuses.find((s) => s.name === c.name);
      const lines: Line[] = [['Image', c.image ?? '<none>']];
      if (c.command?.length) lines.push(['Command', c.command.join(' ')]);
      if (c.args?.length) lines.push(['Args', c.args.join(' ')]);
      lines.push(['Ports', (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}${p.name ? ` (${p.name})` : ''}`).join(', ') || '<none>']);
      if (st) {
        const [state, detail] = Object.entries(st.state ?? {})[0] ?? ['unknown', undefined];
        const extra = detail?.reason ? ` (${detail.reason}${detail.message ? `: ${detail.message}` : ''})` : detail?.startedAt ? `, started ${detail.startedAt}` : '';
        lines.push(['State', state[0]!.toUpperCase() + state.slice(1) + extra], ['Ready', st.ready ? 'True' : 'False'], ['Restart Count', String(st.restartCount ?? 0)]);
      }
      lines.push(['Environment', (c.env ?? []).map((e) => `${e.name}=${e.value ?? '(from a reference)'}`).join('\n') || '<none>']);
      return `  ${c.name}:\n${block(lines, '    ')}`;
    })
    .join('\n');
}

export async function describeResource(ctx: TargetContext, o: Resource, ignored: string[]): Promise<string> {
  const m = o.metadata;
  const lines: Line[] = [['Name', m.name]];
  if (m.namespace) lines.push(['Namespace', m.namespace]);
  lines.push(['Cluster', ctx.name], ['Labels', mapLines(m.labels, '=')], ['Annotations', mapLines(m.annotations, ': ')], ['Created', m.creationTimestamp ?? '<unknown>']);
  // Each case reads the fields of its own kind; the shapes are the API's (see src/api/kinds).
  const spec = (o.spec ?? {}) as Record<string, unknown> & { replicas?: number; type?: string; service?: string };
  const status = (o.status ?? {}) as Record<string, unknown> & { podIP?: string };
  let tail = '';
  switch (o.kind) {
    case 'Pod': {
      const owner = m.ownerReferences?.[0];
      lines.push(['Status', podStatus(o)], ['Ready', podReady(o)], ['IP', status.podIP ?? '<none>']);
      if (owner) lines.push(['Controlled By', `${owner.kind}/${owner.name}`]);
      tail = `Containers:\n${containers((spec.containers as ContainerLike[]) ?? [], status.containerStatuses as ContainerStatusLike[])}`;
      break;
    }
    case 'Deployment':
    case 'StatefulSet': {
      const s = status as { replicas?: number; readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
      const tpl = spec.template as { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: { containers?: ContainerLike[] } } | undefined;
      lines.push(
        ['Selector', mapLines((spec.selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels, '=').replace(/\n/g, ',')],
        ['Replicas', `${spec.replicas ?? 1} desired | ${s.updatedReplicas ?? 0} updated | ${s.replicas ?? 0} total | ${s.availableReplicas ?? 0} available | ${s.readyReplicas ?? 0} ready`],
      );
      tail = `Pod Template:\n${block([['Labels', mapLines(tpl?.metadata?.labels, '=')], ['Annotations', mapLines(tpl?.metadata?.annotations, ': ')]], '  ')}\n  Containers:\n${containers(tpl?.spec?.containers ?? []).replace(/^/gm, '  ')}`;
      break;
    }
    case 'Service': {
      const ports = (spec.ports as { name?: string; port: number; targetPort?: number | string; protocol?: string }[] | undefined) ?? [];
      const selector = spec.selector as Record<string, string> | undefined;
      const pods = selector ? (await ctx.client.list('Pod', { namespace: m.namespace })).items.filter((p) => matchesSelector(p.metadata.labels, { matchLabels: selector })) : [];
      const ready = pods.filter((p) => podReady(p).split('/')[0] === podReady(p).split('/')[1] && (p.status as { podIP?: string } | undefined)?.podIP);
      lines.push(
        ['Type', spec.type ?? 'ClusterIP'],
        ['Headless', spec.clusterIP === 'None' ? 'yes' : 'no'],
        ['Selector', mapLines(selector, '=').replace(/\n/g, ',')],
      );
      for (const p of ports) {
        const target = p.targetPort ?? p.port;
        lines.push(['Port', `${p.name ?? '<unset>'}  ${p.port}/${p.protocol ?? 'TCP'} -> ${String(target)}`]);
        const eps = ready.map((pod) => `${(pod.status as { podIP: string }).podIP}:${typeof target === 'number' ? target : resolveNamedPort(pod, target)}`);
        lines.push(['Endpoints', eps.length ? eps.join(',') : '<none>']);
      }
      break;
    }
    case 'TrafficSplit': {
      const backends = (spec.backends as { service: string; weight?: number }[] | undefined) ?? [];
      const services = new Set((await ctx.client.list('Service', { namespace: m.namespace })).items.map((svc) => svc.metadata.name));
      const missing = backends.filter((b) => !services.has(b.service));
      lines.push(['Service', spec.service ?? '']);
      tail = `Backends:\n${block(backends.map((b) => [b.service, `weight ${b.weight ?? 0}${services.has(b.service) ? '' : '   (no such service)'}`]), '  ')}`;
      for (const b of missing) {
        tail += `\nWarning: backend service "${b.service}" does not exist in namespace ${m.namespace ?? 'default'}; its share is skipped while the other backends have endpoints`;
      }
      break;
    }
    default:
      if (o.spec !== undefined) tail = `Spec:\n${toYaml(o.spec).trimEnd().replace(/^/gm, '  ')}`;
  }
  let text = block(lines) + (tail ? `\n${tail}` : '');
  if (ignored.length) text += `\nIgnored by the local runtime (accepted, valid for Kubernetes):\n${ignored.map((f) => `  ${f}`).join('\n')}`;
  return text;
}

function resolveNamedPort(pod: Resource, name: string): string {
  for (const c of (pod.spec as { containers?: ContainerLike[] } | undefined)?.containers ?? []) {
    const p = c.ports?.find((x) => x.name === name);
    if (p) return String(p.containerPort);
  }
  return `<${name}: no such port>`;
}
