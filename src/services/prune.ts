/**
 * `gpuq prune`: removes finished jobs' folders on their nodes (one connection and one round trip
 * per node, nodes at once) and then their ledger entries, live or archived, and the kept
 * programs no job names any more. A job whose folder could not be removed (its node unreachable
 * or gone from the config, its folder not where it should be, its supervisor alive) keeps its
 * folder and its entry, and is reported. Active jobs are never touched.
 */
import { NodeUnreachableError } from '../core/errors.js';
import { type PruneCriteria, endedAtMs, selectPrunable } from '../core/prune.js';
import type { Job } from '../core/types.js';
import { forgetPrograms, keptProgramPath } from '../ledger/programs.js';
import type { PruneEntry } from '../node/commands.js';
import { type PruneOutcome, pruneFolders } from '../node/protocol.js';
import { connectBounded } from './connect.js';
import type { AppContext } from './context.js';
import { lstatSync } from 'node:fs';

export interface PruneOptions {
  /** Finished more than this many seconds ago; null: any age. */
  olderThanS: number | null;
  /** Keep the newest N finished jobs; null: no such rule. */
  keep: number | null;
  dryRun: boolean;
}

/** A job that went (or, with --dry-run, would go). */
export interface PrunedJob {
  id: string;
  name: string;
  node: string;
  endedAt: string;
  /** Its folder: removed (or would be), already absent, or none (it never had one). */
  folder: 'removed' | 'absent' | 'none';
  /** The folder's disk usage, measured on the node before removal. */
  bytes: number;
}

/** A selected job that stays, and why. */
export interface KeptJob {
  id: string;
  node: string;
  reason: string;
  /** Its node could not be reached (or is not in the config), so its state there is unconfirmed. */
  unreachable: boolean;
}

export interface PruneReport {
  dryRun: boolean;
  pruned: PrunedJob[];
  kept: KeptJob[];
  /** Jobs not finished, never pruned. */
  active: number;
  /** Bytes of job folders freed on the nodes (measured before removal). */
  freedBytes: number;
  /** Bytes of kept program copies freed in the state folder. */
  programBytes: number;
}

const KEPT_REASONS: Partial<Record<PruneOutcome, string>> = {
  link: 'its folder is a symbolic link; gpuq does not follow it',
  notdir: 'its folder is not a folder',
  outside: "its folder is not under the node's workdir (was the workdir changed?)",
  held: 'its supervisor still runs',
  failed: 'part of its folder could not be removed',
};

/** A kept program copy made or reused less than this long ago may belong to a submit under way. */
const PROGRAM_GRACE_MS = 10 * 60 * 1000;

/** Prunes what the criteria select; see the module comment. */
export async function pruneJobs(ctx: AppContext, opts: PruneOptions): Promise<PruneReport> {
  const nowMs = ctx.now().getTime();
  const criteria: PruneCriteria = {
    olderThanMs: opts.olderThanS === null ? null : opts.olderThanS * 1000,
    keep: opts.keep,
    nowMs,
  };
  const all = await ctx.ledger.readAll();
  const { selected, active } = selectPrunable(all, criteria);
  const pruned: PrunedJob[] = [];
  const kept: KeptJob[] = [];
  const went = (j: Job, folder: PrunedJob['folder'], bytes: number) =>
    pruned.push({ id: j.id, name: j.name, node: j.node, endedAt: new Date(endedAtMs(j)).toISOString(), folder, bytes });

  const byNode = new Map<string, Job[]>();
  for (const j of selected) {
    if (j.remote === null) went(j, 'none', 0);
    else byNode.set(j.node, [...(byNode.get(j.node) ?? []), j]);
  }
  await Promise.all(
    [...byNode.entries()].map(async ([name, jobs]) => {
      const keepAll = (reason: string) => {
        for (const j of jobs) kept.push({ id: j.id, node: name, reason, unreachable: true });
      };
      const node = ctx.config.nodes[name];
      if (!node) return keepAll(`node ${name} is not in the config any more`);
      let t: Awaited<ReturnType<typeof connectBounded>>;
      try {
        t = await connectBounded(ctx, node);
      } catch (e) {
        if (!(e instanceof NodeUnreachableError)) throw e;
        return keepAll(`node ${name} is unreachable (${e.cause_})`);
      }
      try {
        const entries: PruneEntry[] = jobs.map((j) => ({
          id: j.id,
          dir: (j.remote as NonNullable<Job['remote']>).dir,
        }));
        const found = await pruneFolders(t, node.workdir, entries, !opts.dryRun);
        for (const j of jobs) {
          const r = found.get(j.id);
          if (!r) kept.push({ id: j.id, node: name, reason: `node ${name} did not answer for it`, unreachable: false });
          else if (r.outcome === 'removed' || r.outcome === 'measured') went(j, 'removed', r.bytes);
          else if (r.outcome === 'absent') went(j, 'absent', 0);
          else kept.push({ id: j.id, node: name, reason: KEPT_REASONS[r.outcome] ?? r.outcome, unreachable: false });
        }
      } catch (e) {
        if (!(e instanceof NodeUnreachableError)) throw e;
        keepAll(`node ${name} is unreachable (${e.cause_})`);
      } finally {
        await t.close().catch(() => undefined);
      }
    }),
  );

  const goneIds = new Set(pruned.map((p) => p.id));
  if (!opts.dryRun && goneIds.size > 0) await ctx.ledger.forget(goneIds);
  // Kept programs that no job left in the ledger names.
  const left = opts.dryRun ? all.filter((j) => !goneIds.has(j.id)) : await ctx.ledger.readAll();
  const named = new Set(left.map((j) => j.kept?.sha256).filter((s): s is string => typeof s === 'string'));
  const orphans = [
    ...new Set(
      all
        .filter((j) => goneIds.has(j.id))
        .map((j) => j.kept?.sha256)
        .filter((s): s is string => typeof s === 'string' && !named.has(s)),
    ),
  ].filter((sha) => settledCopy(ctx.config.stateDir, sha, nowMs));
  const programBytes = opts.dryRun
    ? sizeOf(ctx.config.stateDir, orphans)
    : forgetPrograms(ctx.config.stateDir, orphans);

  const order = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);
  return {
    dryRun: opts.dryRun,
    pruned: pruned.sort((a, b) => (a.endedAt < b.endedAt ? 1 : a.endedAt > b.endedAt ? -1 : order(a, b))),
    kept: kept.sort(order),
    active,
    freedBytes: pruned.reduce((n, p) => n + p.bytes, 0),
    programBytes,
  };
}

/** Whether a kept copy exists and was last kept long enough ago that no submit under way uses it. */
function settledCopy(stateDir: string, sha: string, nowMs: number): boolean {
  try {
    return nowMs - lstatSync(keptProgramPath(stateDir, sha)).mtimeMs > PROGRAM_GRACE_MS;
  } catch {
    return false;
  }
}

function sizeOf(stateDir: string, hashes: string[]): number {
  let n = 0;
  for (const sha of hashes) {
    try {
      n += lstatSync(keptProgramPath(stateDir, sha)).size;
    } catch {
      // gone
    }
  }
  return n;
}
