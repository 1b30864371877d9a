#!/usr/bin/env node
// The `strait` command line.
import { Command, CommanderError } from 'commander';
import { UserError } from '../api/errors.js';
import { ManifestError } from '../api/issues.js';
import { UnknownKindError } from '../api/kinds.js';
import { VERSION } from '../api/version.js';
import { AdminError } from '../control/admin-client.js';
import { registerCertsCommands } from './certs.js';
import { registerCheckCommand } from './check.js';
import { registerClusterCommands } from './cluster-commands.js';
import { registerLinkCommands } from './link.js';
import { registerComponentCommands } from './component-commands.js';
import { registerDemoCommand } from './demo.js';
import { registerInstallCommands } from './install-commands.js';
import { CliError } from './context.js';
import { colour } from './output.js';
import { registerMulticlusterCommands } from './multicluster-commands.js';
import { registerPodCommands } from './pod-commands.js';
import { registerResourceCommands } from './resource-commands.js';
import { registerServiceCommands } from './service-list.js';
import { registerStatCommand } from './stat.js';

function buildProgram(): Command {
  const program = new Command('strait')
    .description('Strait: a multi-cluster service mesh. Clusters run on this machine by default (state in $STRAIT_HOME, default ./.strait).')
    .version(VERSION)
    .option('--cluster <name>', 'the cluster to act on (default: the first one)')
    .option('-n, --namespace <ns>', 'the namespace (default: default)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerDemoCommand(program);
  registerClusterCommands(program);
  registerComponentCommands(program);
  registerResourceCommands(program);
  registerPodCommands(program);
  registerMulticlusterCommands(program);
  registerCertsCommands(program);
  registerLinkCommands(program);
  registerStatCommand(program);
  registerServiceCommands(program);
  registerCheckCommand(program);
  registerInstallCommands(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    process.exitCode = report(err);
  }
}

/** Prints a failure for a person and returns the exit code: 1 failed, 2 usage. */
function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander has printed the message (or the help) already.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof CliError) {
    console.error(colour.bad('error: ') + err.message);
    for (const d of err.details) console.error(`  ${d}`);
    return err.exitCode;
  }
  if (err instanceof ManifestError) {
    console.error(colour.bad('error: ') + 'the manifests were refused; nothing was changed:');
    for (const issue of err.issues) console.error(`  ${issue.format()}`);
    return 1;
  }
  if (err instanceof UnknownKindError) {
    console.error(colour.bad('error: ') + err.message);
    return 2;
  }
  if (err instanceof UserError) {
    console.error(colour.bad('error: ') + err.message);
    if (err instanceof AdminError) for (const d of err.details) console.error(`  ${d}`);
    return 1;
  }
  console.error(colour.bad('error: ') + ((err as Error)?.stack ?? String(err)));
  return 1;
}

await main();
