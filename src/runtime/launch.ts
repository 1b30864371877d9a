// What a container runs in the local runtime: its command, or the sample app its image stands for,
// with the pod's environment.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { knownSampleImages, parseImageReference, resolveSampleImage, type SampleImage } from '../../samples/images.js';
import type { Resource } from '../api/types.js';
import type { Container, EnvVar, Pod, PodSpec } from './pod-types.js';
import { resolveCommand } from './processes.js';

export interface Launch {
  executable: string;
  args: string[];
  env: Record<string, string>;
}

/** Why a container cannot start, with the reason Kubernetes gives in `state.waiting`. */
export interface LaunchProblem {
  reason: 'ErrImagePull' | 'RunContainerError' | 'CreateContainerConfigError';
  message: string;
}

export function isLaunchProblem<T extends object>(x: T | LaunchProblem): x is LaunchProblem {
  return 'reason' in x;
}

/** This installation's CLI: Strait's own components run from it, whatever their image tag. */
export const STRAIT_CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Images of Strait's own components, and the CLI command each runs. */
const COMPONENT_IMAGES: Record<string, string> = { 'strait/proxy': 'proxy', 'strait/control-plane': 'control-plane', 'strait/gateway': 'gateway' };

function componentFor(image: string): string | undefined {
  try {
    return COMPONENT_IMAGES[parseImageReference(image).repository];
  } catch {
    return undefined;
  }
}

/** The sample app an image stands for; undefined for an unknown or malformed image. */
function sampleFor(container: Container): SampleImage | undefined {
  if (!container.image) return undefined;
  try {
    return resolveSampleImage(container.image);
  } catch {
    return undefined;
  }
}

interface Program {
  executable: string;
  args: string[];
}

function program(container: Container): Program | LaunchProblem {
  const [command, ...commandArgs] = container.command ?? [];
  const args = container.args ?? [];
  if (command !== undefined) {
    const executable = resolveCommand(command);
    if (executable === undefined) {
      const where = command.includes('/') ? '' : ' in PATH';
      return { reason: 'RunContainerError', message: `command "${command}" not found${where}` };
    }
    return { executable, args: [...commandArgs, ...args] };
  }
  if (!container.image) return { reason: 'ErrImagePull', message: 'the container names neither an image nor a command' };
  const component = componentFor(container.image);
  if (component !== undefined) return { executable: process.execPath, args: [STRAIT_CLI, component, ...args] };
  let sample: SampleImage | undefined;
  try {
    sample = resolveSampleImage(container.image);
  } catch (err) {
    return { reason: 'ErrImagePull', message: (err as Error).message };
  }
  if (!sample) {
    return {
      reason: 'ErrImagePull',
      message: `image "${container.image}" has no local sample and the container names no command; known images: ${knownSampleImages().join(', ')}`,
    };
  }
  if (!existsSync(sample.script)) {
    return { reason: 'ErrImagePull', message: `sample "${sample.sample}" for image "${container.image}" is not built (${sample.script} is missing); run npm run build` };
  }
  return { executable: process.execPath, args: [sample.script, ...args] };
}

/** Problems that keep the pod's containers from running here; empty when every one can. */
export function checkRunnable(spec: PodSpec): string[] {
  const problems: string[] = [];
  for (const container of spec.containers) {
    const p = program(container);
    // A command spelled with $(VAR) is only known once the pod's environment is.
    if (isLaunchProblem(p) && !(container.command?.[0] ?? '').includes('$(')) problems.push(`container "${container.name}": ${p.message}`);
    for (const env of container.env ?? []) {
      const problem = envProblem(env);
      if (problem) problems.push(`container "${container.name}": ${problem}`);
    }
  }
  return problems;
}

/** The program, arguments and environment of one container of a pod whose address is `podIP`. */
export function containerLaunch(pod: Pod, container: Container, podIP: string): Launch | LaunchProblem {
  for (const env of container.env ?? []) {
    const problem = envProblem(env);
    if (problem) return { reason: 'CreateContainerConfigError', message: problem };
  }
  const sample = sampleFor(container);
  const vars = environment(pod, container, podIP, sample);
  const expand = (list: string[] | undefined) => list?.map((text) => expandReferences(text, vars));
  const p = program({ ...container, command: expand(container.command), args: expand(container.args) });
  if (isLaunchProblem(p)) return p;
  // A container sees this machine's PATH (its commands are this machine's) and nothing else of ours.
  const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  if (process.env.HOME) base.HOME = process.env.HOME;
  return { executable: p.executable, args: p.args, env: { ...base, ...vars } };
}

/**
 * The environment a pod's container sees (the CLI's `exec` runs commands with it): the image's own
 * variables, POD_NAME, POD_NAMESPACE, POD_IP, HOSTNAME, SERVICE_ACCOUNT, then the container's env.
 * `containerName` defaults to the first container.
 */
export function podEnvironment(pod: Pod, containerName?: string): Record<string, string> {
  const containers = pod.spec?.containers ?? [];
  const container = containerName === undefined ? containers[0] : containers.find((c) => c.name === containerName);
  if (!container) {
    throw new Error(`pod ${pod.metadata.name} has no container ${containerName === undefined ? '' : `"${containerName}"; it has: ${containers.map((c) => c.name).join(', ')}`}`.trim());
  }
  return environment(pod, container, pod.status?.podIP ?? '', sampleFor(container));
}

function environment(pod: Pod, container: Container, podIP: string, sample: SampleImage | undefined): Record<string, string> {
  const vars: Record<string, string> = {
    ...sample?.env,
    POD_NAME: pod.metadata.name,
    POD_NAMESPACE: namespaceOf(pod),
    POD_IP: podIP,
    HOSTNAME: pod.spec?.hostname ?? pod.metadata.name,
    SERVICE_ACCOUNT: pod.spec?.serviceAccountName ?? 'default',
  };
  // As in Kubernetes, a value may refer to variables defined before it as $(NAME).
  for (const env of container.env ?? []) {
    if (env.value !== undefined) vars[env.name] = expandReferences(env.value, vars);
    else if (env.valueFrom?.fieldRef) vars[env.name] = fieldValue(pod, env.valueFrom.fieldRef.fieldPath, podIP) ?? '';
    else if (env.valueFrom === undefined) vars[env.name] = '';
  }
  return vars;
}

export function namespaceOf(pod: Resource): string {
  return pod.metadata.namespace ?? 'default';
}

const MAP_FIELD = /^metadata\.(labels|annotations)\['([^']*)'\]$/;

function fieldValue(pod: Pod, path: string, podIP: string): string | undefined {
  switch (path) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return namespaceOf(pod);
    case 'metadata.uid':
      return pod.metadata.uid ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP':
    case 'status.podIPs':
      return podIP;
  }
  const m = MAP_FIELD.exec(path);
  if (!m) return undefined;
  const map = m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations;
  return map?.[m[2]!] ?? '';
}

const SUPPORTED_FIELDS = ['metadata.name', 'metadata.namespace', 'metadata.uid', "metadata.labels['KEY']", "metadata.annotations['KEY']", 'spec.serviceAccountName', 'status.podIP', 'status.podIPs'];

function envProblem(env: EnvVar): string | undefined {
  if (env.value !== undefined || env.valueFrom === undefined) return undefined;
  const path = env.valueFrom.fieldRef?.fieldPath;
  if (path === undefined) {
    const source = Object.keys(env.valueFrom).join(', ');
    return `env ${env.name}: valueFrom.${source} is not supported by the local runtime; only valueFrom.fieldRef is`;
  }
  const known = SUPPORTED_FIELDS.includes(path) || MAP_FIELD.test(path);
  return known ? undefined : `env ${env.name}: fieldRef "${path}" is not supported by the local runtime; supported: ${SUPPORTED_FIELDS.join(', ')}`;
}

/** Replaces $(NAME) with the variable's value, as Kubernetes does; `$$` is a literal `$`; unknown names stay. */
export function expandReferences(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole: string, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.prototype.hasOwnProperty.call(vars, name) ? vars[name]! : whole;
  });
}

/** The port whose opening makes the container ready: its readiness probe's, else its first TCP port. */
export function readinessPort(container: Container): number | undefined {
  const probePort = container.readinessProbe?.tcpSocket?.port ?? container.readinessProbe?.httpGet?.port;
  if (typeof probePort === 'number') return probePort;
  if (typeof probePort === 'string') {
    const named = container.ports?.find((p) => p.name === probePort)?.containerPort;
    if (named !== undefined) return named;
  }
  const tcp = container.ports?.find((p) => (p.protocol ?? 'TCP') === 'TCP');
  if (tcp) return tcp.containerPort;
  // A sample app listens on its default port even when the manifest declares none.
  if (!container.command) return sampleFor(container)?.ports[0];
  return undefined;
}
