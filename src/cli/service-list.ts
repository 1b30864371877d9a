// `strait service list`: every service callers in a cluster can name, as Cilium's `cilium service
// list --clustermesh-affinity` shows it: each frontend name and port, and under it every backend
// endpoint with its cluster, address (a remote one's pod address and the gateway it is reached
// through), state, tier, and whether it is preferred now.
import type { Command } from 'commander';
import { toJson, toYaml } from '../api/codec.js';
import type { BackendState, ListedBackend, ListedService, ServiceListing } from '../control/discovery/listing.js';
import { targetContext, UsageError } from './context.js';
import { withKubeOptions } from './kube-context.js';
import { colour, table } from './output.js';

export function registerServiceCommands(program: Command): void {
  const service = program.command('service').description('services as callers in a cluster see them');
  withKubeOptions(service.command('list'))
    .description('every service, its frontend names, and each backend with its cluster, address, state, tier and whether it is preferred now')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { output?: string }, cmd: Command) => {
      if (opts.output !== undefined && opts.output !== 'json' && opts.output !== 'yaml') throw new UsageError(`-o ${opts.output}: use json or yaml`);
      const ctx = await targetContext(cmd);
      const listing = await ctx.client.services(ctx.namespaceGiven ? ctx.namespace : undefined);
      if (opts.output === 'json') return console.log(toJson(listing));
      if (opts.output === 'yaml') return console.log(toYaml(listing).trimEnd());
      if (listing.services.length === 0) return console.error(`No services found in cluster ${listing.cluster}${ctx.namespaceGiven ? ` in namespace ${ctx.namespace}` : ''}.`);
      console.log(serviceTable(listing));
    });
}

const HEADERS = ['NAMESPACE', 'SERVICE', 'TYPE', 'FRONTEND', 'CLUSTER', 'BACKEND', 'STATE', 'PREFERRED', 'TIER'];

/** One row per backend; a service's name, type and preference, and each frontend, on the first rows of their block. */
export function serviceTable(listing: ServiceListing): string {
  return table(HEADERS, listing.services.flatMap(serviceRows));
}

function serviceRows(service: ListedService): string[][] {
  // What describes the service, one item per row down the TYPE column.
  const about = [service.type, ...(service.preference ? [service.preference] : [])];
  const rows: string[][] = [];
  const frontends = service.frontends.length > 0 ? service.frontends : [{ name: '<none>', backends: [] }];
  for (const frontend of frontends) {
    const backends: (ListedBackend | undefined)[] = frontend.backends.length > 0 ? frontend.backends : [undefined];
    backends.forEach((backend, i) => rows.push([i === 0 ? frontend.name : '', ...backendCells(backend)]));
  }
  while (rows.length < about.length) rows.push(['', '', '', '', '', '']);
  return rows.map((cells, i) => [i === 0 ? service.namespace : '', i === 0 ? service.name : '', about[i] ?? '', ...cells]);
}

function backendCells(backend: ListedBackend | undefined): string[] {
  if (!backend) return ['-', '<none>', '-', '-', '-'];
  const address = backend.via ? `${backend.address} via ${backend.via}` : backend.address;
  return [backend.cluster, address, stateText(backend.state), backend.preferred ? colour.ok('yes') : 'no', String(backend.tier)];
}

function stateText(state: BackendState): string {
  if (state === 'active') return colour.ok(state);
  return state === 'unready' ? colour.warn(state) : colour.bad(state);
}
