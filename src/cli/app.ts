/**
 * What command modules share: lazy creation of the service context from global options,
 * output sinks, styles, and the exit code the entry point will use.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { NodeConfig } from '../config/types.js';
import { parseDuration } from '../core/units.js';
import { openLedger } from '../ledger/ledger.js';
import type { AppContext, Output } from '../services/context.js';
import type { Transport } from '../transport/transport.js';
import { makeStyle, type Style } from './style.js';

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CliApp {
  io: Io;
  exitCode: number;
  /** Builds the context for services from the global options of `cmd` (before each action). */
  prepare(cmd: Command): Promise<void>;
  /** The context built by prepare(). */
  context(cmd: Command): AppContext;
  /** Style for stdout (results) given whether this command prints JSON. */
  style(json: boolean): Style;
  /** Style for stderr (messages). */
  errStyle(): Style;
  print(text: string): void;
  printJson(value: unknown): void;
}

/** The package root (holding templates/), from this module's location in dist/cli/. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Opens a transport for a node: local in-process, ssh loaded only when needed. */
async function connect(
  node: NodeConfig,
  knownHostsPath: string,
  acceptNew: boolean,
  env: NodeJS.ProcessEnv,
): Promise<Transport> {
  // A Slurm node without a host: sbatch runs on this machine.
  if (node.transport === 'local' || (node.transport === 'slurm' && node.host === null)) {
    const { localTransport } = await import('../transport/local.js');
    return localTransport(node.name);
  }
  const { connectSsh } = await import('../transport/ssh.js');
  return connectSsh(node, {
    knownHostsPath,
    acceptNewHostKey: acceptNew || node.acceptNewHostKey,
    sshConfigFile: env.GPUQ_SSH_CONFIG || undefined,
  });
}

/**
 * How long a command waits for the ledger lock held by another gpuq (GPUQ_LOCK_WAIT, a duration;
 * README, "Jobs and the ledger"); undefined: the ledger's default.
 */
function lockWaitMs(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.GPUQ_LOCK_WAIT;
  if (v === undefined || v === '') return undefined;
  return Math.round(parseDuration(v, 'GPUQ_LOCK_WAIT', 3600) * 1000);
}

/** Creates the CLI's shared state for one run. */
export function makeApp(io: Io): CliApp {
  let ctx: AppContext | null = null;
  const out: Output = {
    result: (t) => io.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    info: (t) => io.stderr.write(`gpuq: ${t}\n`),
    raw: (stream, chunk) => {
      // Over the stream's buffer: a promise settled once this chunk is flushed (or failed).
      let flushed: () => void = () => undefined;
      const p = new Promise<void>((resolve) => {
        flushed = resolve;
      });
      return (stream === 'stdout' ? io.stdout : io.stderr).write(chunk, () => flushed()) ? undefined : p;
    },
    stderrIsTTY: io.stderr.isTTY === true,
  };
  const app: CliApp = {
    io,
    exitCode: 0,
    async prepare(cmd) {
      if (ctx) return;
      const g = cmd.optsWithGlobals() as { config?: string; acceptNewHostKey?: boolean };
      const config = await loadConfig({ explicitFile: g.config ?? null, env: io.env, cwd: io.cwd });
      ctx = {
        config,
        ledger: openLedger(config.ledgerPath, { lockWaitMs: lockWaitMs(io.env) }),
        out,
        now: () => new Date(),
        connect: (node) => connect(node, config.knownHostsPath, g.acceptNewHostKey === true, io.env),
        packageRoot: packageRoot(),
      };
    },
    context() {
      if (!ctx) throw new Error('context used before prepare(): a command ran outside the preAction hook');
      return ctx;
    },
    style: (json) => makeStyle({ isTTY: io.stdout.isTTY === true, env: io.env, json }),
    errStyle: () => makeStyle({ isTTY: io.stderr.isTTY === true, env: io.env, json: false }),
    print: (t) => out.result(t),
    printJson: (v) => io.stdout.write(`${JSON.stringify(v, null, 2)}\n`),
  };
  return app;
}
