// Looking at linked clusters from one cluster: `strait gateways` (as `linkerd multicluster
// gateways`), `strait remote-clusters` (as `istioctl remote-clusters`), and stopping or starting a
// cluster's own gateway (`strait gateway stop|start`).
import type { Command } from 'commander';
import { toJson } from '../api/codec.js';
import { MULTICLUSTER_NAMESPACE, type Link } from '../api/kinds/strait.js';
import { clusterContext, UsageError } from './context.js';
import { age, colour, table } from './output.js';

async function links(cmd: Command): Promise<Link[]> {
  const ctx = clusterContext(cmd);
  return (await ctx.client.list('Link', { namespace: MULTICLUSTER_NAMESPACE })).items as Link[];
}

const ms = (v: number | undefined) => (v === undefined ? '-' : `${Math.round(v)}ms`);

function condition(link: Link, type: 'Synced' | 'GatewayAlive') {
  return link.status?.conditions.find((c) => c.type === type);
}

function jsonOrTable(output: string | undefined, rows: object[], render: () => string): void {
  if (output !== undefined && output !== 'json') throw new UsageError(`-o ${output}: only json is supported`);
  console.log(output === 'json' ? toJson(rows) : render());
}

export function registerMulticlusterCommands(program: Command): void {
  program
    .command('gateways')
    .description("the gateways of the clusters this cluster is linked to: alive, services mirrored, probe latency")
    .option('-o, --output <format>', 'json')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const rows = (await links(cmd)).map((l) => ({
        cluster: l.metadata.name,
        alive: l.status?.gateway.alive,
        services: l.status?.services ?? 0,
        latencyMs: l.status?.gateway.latencyMs,
        lastError: l.status?.gateway.lastError,
      }));
      jsonOrTable(opts.output, rows, () =>
        rows.length === 0
          ? 'No linked clusters; link one with: strait link --from OTHER --to THIS'
          : table(
              ['CLUSTER', 'ALIVE', 'NUM_SVC', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99'],
              rows.map((r) => [
                r.cluster,
                r.alive === undefined ? '-' : r.alive ? colour.ok('True') : colour.bad('False'),
                r.services,
                ms(r.latencyMs?.p50),
                ms(r.latencyMs?.p95),
                ms(r.latencyMs?.p99),
              ]),
            ),
      );
    });

  program
    .command('remote-clusters')
    .description('the clusters this cluster reads services from, and whether each is in sync')
    .option('-o, --output <format>', 'json')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const now = Date.now();
      const rows = (await links(cmd)).map((l) => {
        const synced = condition(l, 'Synced');
        return {
          name: l.metadata.name,
          gateway: l.spec?.gatewayAddress ?? '',
          status: synced?.status === 'True' ? 'synced' : `failed: ${synced?.message ?? 'not synced yet'}`,
          services: l.status?.services ?? 0,
          lastSync: l.status?.lastSync,
        };
      });
      jsonOrTable(opts.output, rows, () =>
        rows.length === 0
          ? 'No remote clusters; link one with: strait link --from OTHER --to THIS'
          : table(
              ['NAME', 'GATEWAY', 'STATUS', 'SERVICES', 'LAST SYNC'],
              rows.map((r) => [r.name, r.gateway, r.status === 'synced' ? colour.ok(r.status) : colour.bad(r.status), r.services, r.lastSync ? `${age(r.lastSync, now)} ago` : '-']),
            ),
      );
    });

  const gateway = program.command('gateway').description("stop or start a cluster's gateway (what linked clusters see as a dead or recovered cluster)");
  for (const running of [false, true]) {
    gateway
      .command(running ? 'start' : 'stop')
      .description(running ? "start the cluster's gateway again" : "stop the cluster's gateway: its port closes, nothing crosses into the cluster")
      .action(async (_opts: unknown, cmd: Command) => {
        const ctx = clusterContext(cmd);
        const status = await ctx.client.setGatewayRunning(running);
        console.log(`gateway of ${ctx.cluster.name} (${status.address}) ${status.running ? 'running' : 'stopped'}`);
      });
  }
}
