/**
 * Reaching nodes: `gpuq nodes` (every node probed at once, each bounded by its connect
 * timeout) and the node choice of `submit` (connect to the candidates at once, rank the ones
 * that answer by running gpuq jobs and load, report the ones that do not).
 */
import { NodeUnreachableError, UserError, usageError } from '../core/errors.js';
import { DEFAULT_LOCK_DIR, expectedWaitMs, pickByExpectedStart } from '../core/queue.js';
import { rankNodes } from '../core/schedule.js';
import type { Job } from '../core/types.js';
import type { NodeConfig } from '../config/types.js';
import { dockerProbeCommand, type NodeLocks } from '../node/commands.js';
import { type DockerReport, parseDockerProbe } from '../core/docker-info.js';
import { readNodeStatus } from '../node/protocol.js';
import { readPartition } from '../node/slurm.js';
import type { PartitionSummary } from '../core/slurm.js';
import type { NodeStatus } from '../node/node-status.js';
import type { Transport } from '../transport/transport.js';
import { bounded, connectBounded } from './connect.js';
import type { AppContext } from './context.js';
import { withLocalGpus } from './local-gpus.js';

/** One node as `gpuq nodes` reports it (the --json shape). */
export interface NodeReport {
  name: string;
  transport: 'local' | 'ssh' | 'slurm';
  /** The host as configured (an ~/.ssh/config alias stays an alias), null for local. */
  host: string | null;
  reachable: boolean;
  /** Why it is unreachable (one sentence), or null. */
  error: string | null;
  /** What to do about it, when gpuq knows. */
  hint: string | null;
  /** Connect time (handshake and login) and one command's round trip, in ms. */
  connectMs: number | null;
  latencyMs: number | null;
  /** GPU indices gpuq may use there: the config's, or nvidia-smi's for a local node without `gpus` in it. */
  configuredGpus: number[];
  /** gpuq jobs this client's ledger has running there. */
  ledgerJobs: number;
  status: NodeStatus | null;
  /** A Slurm node: its partition as sinfo and squeue show it (absent elsewhere). */
  slurm?: PartitionSummary | null;
  /** Docker there (usable, version, cgroups, rootless), or null where the docker command is missing. */
  docker?: DockerReport | null;
}

/** The lock folder and GPUs to read a node's queue from, or null for a node without GPUs. */
export function locksOf(node: NodeConfig): NodeLocks | null {
  return node.gpus.length > 0 ? { dir: node.lockDir ?? DEFAULT_LOCK_DIR, gpus: node.gpus } : null;
}

function errorParts(e: unknown): { error: string; hint: string | null } {
  if (e instanceof NodeUnreachableError) return { error: e.cause_, hint: e.hint };
  if (e instanceof UserError) return { error: e.message, hint: e.hint };
  return { error: (e as Error)?.message ?? String(e), hint: null };
}

/**
 * Probes nodes concurrently (all of the config's, or those named): connect, one round trip,
 * then load, memory, disk, inodes, GPUs and running jobs. A dead node shows as unreachable
 * with its reason; it never holds the others up longer than its own connect timeout.
 */
export async function probeNodes(ctx: AppContext, names: string[] = []): Promise<NodeReport[]> {
  for (const n of names) {
    if (!ctx.config.nodes[n])
      throw usageError(`unknown node "${n}".`, `Nodes in the config: ${Object.keys(ctx.config.nodes).join(', ')}.`);
  }
  const named =
    names.length > 0 ? names.map((n) => ctx.config.nodes[n] as NodeConfig) : Object.values(ctx.config.nodes);
  // A local node without GPUs in the config shows what nvidia-smi finds now.
  const nodes = await withLocalGpus(ctx, named, { fresh: true });
  const live = await ctx.ledger.readLive().catch(() => [] as Job[]);
  return Promise.all(
    nodes.map((node) => probeOne(ctx, node, live.filter((j) => j.node === node.name && j.state !== 'done').length)),
  );
}

async function probeOne(ctx: AppContext, node: NodeConfig, ledgerJobs: number): Promise<NodeReport> {
  const report: NodeReport = {
    name: node.name,
    transport: node.transport,
    host: node.host,
    reachable: false,
    error: null,
    hint: null,
    connectMs: null,
    latencyMs: null,
    configuredGpus: node.gpus,
    ledgerJobs,
    status: null,
  };
  const t0 = performance.now();
  let t: Transport;
  try {
    t = await connectBounded(ctx, node);
  } catch (e) {
    Object.assign(report, errorParts(e));
    return report;
  }
  try {
    report.connectMs = Math.round(performance.now() - t0);
    const step = async () => {
      const t1 = performance.now();
      await t.exec({ purpose: 'measure latency', script: 'true' });
      report.latencyMs = Math.round((performance.now() - t1) * 10) / 10;
      if (node.transport === 'slurm') report.slurm = await readPartition(t, node.slurm?.partition ?? null);
      report.status = await readNodeStatus(t, node.workdir, true, locksOf(node));
      [report.status, report.docker] = await Promise.all([
        readNodeStatus(t, node.workdir, true, locksOf(node)),
        probeDocker(t, node),
      ]);
    };
    const limitS = Math.max(10, node.connectTimeoutS);
    await bounded(
      step(),
      limitS * 1000,
      () => undefined,
      () =>
        new NodeUnreachableError(
          node.name,
          `connected, but the status probe did not finish within ${limitS} s`,
          'a hung mount or GPU driver on the node can cause this',
        ),
    );
    report.reachable = true;
  } catch (e) {
    Object.assign(report, errorParts(e));
  } finally {
    await t.close().catch(() => undefined);
  }
  return report;
}

/**
 * Docker on the node, as its login account sees it, and the containers of its dead jobs removed
 * (core/docker-info.ts). Null where the docker command is missing or the probe itself failed.
 */
async function probeDocker(t: Transport, node: NodeConfig): Promise<DockerReport | null> {
  const r = await t.exec(dockerProbeCommand(node.docker.command, node.workdir));
  if (r.code !== 0) return null;
  return parseDockerProbe(r.stdout, node.docker.command.join(' '));
}

/** A candidate that answered: its open connection and what it said of itself. */
export interface ReachedNode {
  node: NodeConfig;
  transport: Transport;
  status: NodeStatus | null;
}

export interface ReachOptions {
  /** gpuq jobs this client's ledger has running on a node. */
  ledgerJobs: (node: string) => number;
  /** GPUs the job needs. */
  gpus: number;
  /** The job's `--priority` (default 0): where it would stand in each node's queue. */
  priority?: number;
  /** Told about each node that did not answer (the caller says so on stderr). */
  onUnreachable: (node: NodeConfig, e: unknown) => void;
  /** After the first node answers, how long to wait for slower ones (default 1000 ms). */
  graceMs?: number;
}

/**
 * Connects to candidate nodes at once and returns those that answered, best first: for a GPU
 * job, the node where it is expected to start first (its queue and leases: nodes with the GPUs
 * free now come first, unknown last), then fewest running gpuq jobs (the node's own count when
 * it gave one, else the ledger's), then lowest load per CPU. One candidate is connected to without a probe. The caller closes every
 * returned transport. Throws the last connection error when no candidate answered.
 */
export async function reachCandidates(ctx: AppContext, nodes: NodeConfig[], o: ReachOptions): Promise<ReachedNode[]> {
  if (nodes.length === 1) {
    const node = nodes[0] as NodeConfig;
    return [{ node, transport: await connectBounded(ctx, node), status: null }];
  }
  const reached: ReachedNode[] = [];
  let lastError: unknown = null;
  let closedEarly = false;
  await new Promise<void>((resolve) => {
    let pending = nodes.length;
    let graceTimer: NodeJS.Timeout | undefined;
    const settle = () => {
      if (--pending === 0) {
        clearTimeout(graceTimer);
        resolve();
      }
    };
    for (const node of nodes) {
      (async () => {
        const t = await connectBounded(ctx, node);
        try {
          const status = await readNodeStatus(t, node.workdir, false, o.gpus > 0 ? locksOf(node) : null);
          if (closedEarly) {
            await t.close();
            return;
          }
          reached.push({ node, transport: t, status });
          if (!graceTimer) {
            graceTimer = setTimeout(() => {
              closedEarly = true;
              resolve();
            }, o.graceMs ?? 1000);
          }
        } catch (e) {
          await t.close().catch(() => undefined);
          throw e;
        }
      })().then(settle, (e: unknown) => {
        lastError = e;
        if (!closedEarly) o.onUnreachable(node, e);
        settle();
      });
    }
  });
  closedEarly = true;
  if (reached.length === 0) throw lastError ?? new Error('no node to try');
  const ranked = rankNodes(
    reached.map((r) => ({
      name: r.node.name,
      runningJobs: r.status?.runningJobs ?? o.ledgerJobs(r.node.name),
      load: r.status?.load?.[0] ?? null,
      cpus: r.status?.cpus ?? null,
      gpus: r.node.transport === 'slurm' ? [...Array(Math.max(o.gpus, r.node.gpus.length)).keys()] : r.node.gpus,
      r,
    })),
    o.gpus,
  );
  if (o.gpus === 0) return ranked.map((x) => x.r);
  const nowMs = ctx.now().getTime();
  const waits = ranked.map((x) => ({
    name: x.name,
    waitMs: expectedWaitMs(x.r.status?.queue, o.gpus, o.priority ?? 0, nowMs),
    r: x.r,
  }));
  return pickByExpectedStart(waits).map((x) => x.r);
}
