// Commands that act on a pod: logs and exec.
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { resolveKind } from '../api/kinds.js';
import { matchesSelector } from '../api/labels.js';
import type { Pod } from '../api/kinds.js';
import type { LabelSelector, Resource } from '../api/types.js';
import { podEnvironment } from '../runtime/pods.js';
import { CliError, targetContext, targetFlag, UsageError, type TargetContext } from './context.js';
import { withKubeOptions } from './kube-context.js';
import { podReady, podStatus } from './printers.js';

/** A pod by name, or the first ready pod of `deploy/NAME` / `sts/NAME`, as kubectl picks one. */
export async function findPod(ctx: TargetContext, target: string): Promise<Resource> {
  const slash = target.indexOf('/');
  const kind = slash < 0 ? resolveKind('pod') : resolveKind(target.slice(0, slash));
  const name = slash < 0 ? target : target.slice(slash + 1);
  if (kind.kind === 'Pod') {
    const pod = await ctx.client.get({ kind: 'Pod', namespace: ctx.namespace, name });
    if (!pod) throw new CliError(`pod "${name}" not found in namespace "${ctx.namespace}" of ${ctx.name}; list pods with: strait get pods -n ${ctx.namespace} ${targetFlag(ctx)}`);
    return pod;
  }
  if (kind.kind !== 'Deployment' && kind.kind !== 'StatefulSet') throw new UsageError(`cannot pick a pod of a ${kind.kind}; use a pod name, deploy/NAME or sts/NAME`);
  const owner = await ctx.client.get({ kind: kind.kind, namespace: ctx.namespace, name });
  if (!owner) throw new CliError(`${kind.kind} "${name}" not found in namespace "${ctx.namespace}" of ${ctx.name}`);
  const selector = (owner.spec as { selector?: LabelSelector } | undefined)?.selector ?? {};
  const pods = (await ctx.client.list('Pod', { namespace: ctx.namespace })).items.filter((p) => matchesSelector(p.metadata.labels, selector));
  const running = pods.filter((p) => podStatus(p) === 'Running');
  const ready = running.filter((p) => {
    const [r, t] = podReady(p).split('/');
    return r === t;
  });
  const pod = ready[0] ?? running[0] ?? pods[0];
  if (!pod) throw new CliError(`${kind.kind} "${name}" has no pods yet; see: strait get pods -n ${ctx.namespace} ${targetFlag(ctx)}`);
  return pod;
}

export function registerPodCommands(program: Command): void {
  withKubeOptions(program.command('logs'))
    .description("print a pod's log (POD, deploy/NAME or sts/NAME)")
    .argument('<pod>')
    .option('-c, --container <name>', 'the container (default: the first)')
    .option('-f, --follow', 'keep printing as the log grows')
    .option('--tail <lines>', 'only the last lines')
    .action(async (target: string, opts: { container?: string; follow?: boolean; tail?: string }, cmd: Command) => {
      const ctx = await targetContext(cmd);
      const pod = await findPod(ctx, target);
      const tail = opts.tail === undefined ? undefined : Number(opts.tail);
      if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError(`--tail must be a whole number >= 0, got "${opts.tail}"`);
      const stream = await ctx.client.logs(ctx.namespace, pod.metadata.name, { container: opts.container, follow: opts.follow, tail });
      stream.pipe(process.stdout);
      await new Promise<void>((resolve, reject) => stream.on('end', resolve).on('error', reject));
    });

  withKubeOptions(program.command('exec'))
    .description("run a command with a pod's identity and environment: strait exec deploy/sleep -- curl -s helloworld:5000/hello")
    .argument('<pod>', 'POD, deploy/NAME or sts/NAME')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-c, --container <name>', 'the container whose environment to use (default: the first)')
    .action(async (target: string, command: string[], opts: { container?: string }, cmd: Command) => {
      const ctx = await targetContext(cmd);
      const pod = await findPod(ctx, target);
      if (podStatus(pod) !== 'Running') throw new CliError(`pod ${pod.metadata.name} is ${podStatus(pod)}, not Running; see: strait describe pod ${pod.metadata.name} -n ${ctx.namespace} ${targetFlag(ctx)}`);
      // On Kubernetes, the pod as its node agent on this machine runs it: in its directory, its volumes resolved.
      const files = ctx.kube ? await ctx.kube.podFiles(ctx.namespace, pod.metadata.name) : undefined;
      // As kubectl exec: the pod's first app container unless one is named (its sidecars come after).
      const container = opts.container ?? (files ? (pod as Pod).spec?.containers[0]?.name : undefined);
      const env: NodeJS.ProcessEnv = { ...process.env, ...podEnvironment(files?.pod ?? (pod as Pod), container) };
      const cwd = files?.dir;
      const [file, ...args] = command;
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(file!, args, { stdio: 'inherit', env, cwd });
        child.on('error', (err: NodeJS.ErrnoException) => {
          reject(err.code === 'ENOENT' ? new CliError(`exec: command "${file}" not found (searched PATH: ${env.PATH ?? ''})`) : err);
        });
        child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 + 1 : 1)));
      });
      process.exitCode = code;
    });
}
