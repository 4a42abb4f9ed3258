/**
 * `gpuq submit a.py b.py …`: one job per file with the same options, at the cost of about one
 * submit: the files are checked (one bad file: exit 2, nothing recorded), all jobs are recorded
 * in one ledger update, each node is reached once, and the jobs it takes start in one round
 * trip (node/batch.ts: one script for all of them); what became of them is recorded in one
 * more ledger update. Jobs the batch cannot carry (--include uploads, a program over the
 * inline size, docker isolation, a Slurm node) take the one-job path, a few at a time.
 */
import { readFileSync } from 'node:fs';
import { isRetryable, NodeFaultError, NodeUnreachableError, UserError, usageError } from '../core/errors.js';
import { gradeArgs } from '../core/grading.js';
import { finish, moveTo, withSupervisorTimes } from '../core/job.js';
import type { Job } from '../core/types.js';
import { neverStarted } from '../core/verdicts.js';
import type { NodeConfig } from '../config/types.js';
import type { BatchJob, BatchOutcome } from '../node/batch.js';
import { adoptLaunch, INLINE_PROGRAM_MAX, launchBatch, leaseRefusedError } from '../node/protocol.js';
import { commandFor } from '../node/wrapper.js';
import type { AppContext } from './context.js';
import type { ReachedNode } from './nodes.js';
import { type NodeLink, openNodeLink } from './reconnect.js';
import {
  keepSubmitted,
  launchFirst,
  planSubmit,
  reachInOrder,
  readTemplates,
  recordPendingMany,
  type SubmitOptions,
  type SubmitPlan,
  type Templates,
  wrapperFor,
} from './submit.js';
import { planUploads } from './uploads.js';

/** What `submit` of several files did: each job or why it did not start, and the open links. */
export interface SubmitManyResult {
  /** In the order of the files: the started (or queued) job, or the error that stopped it. */
  results: Array<Job | Error>;
  /** The connection to each node reached, for waiting; the caller closes them. */
  links: NodeLink[];
}

/** Jobs launched at once on the one-job path: the SSH transport caps channels at 8 (sshd's MaxSessions is 10). */
const ONE_BY_ONE_CONCURRENCY = 8;

/** Jobs in one batch: each holds a descriptor in the batch's shell while it starts (ulimit -n is often 1024). */
const BATCH_MAX = 200;

/** Someone who wants to hear how the launch goes (the terminal's status line). */
export interface BulkProgress {
  onStarting(count: number, node: string): void;
}

/**
 * Plans every file (the first fully, the others as the first: same options, nodes and limits),
 * records them pending in one update, then starts them (see the module comment). A job that
 * could not start is recorded as never started and its error returned in its place.
 */
export async function submitMany(
  ctx: AppContext,
  list: SubmitOptions[],
  cwd: string,
  progress?: BulkProgress,
): Promise<SubmitManyResult> {
  const first = await planSubmit(ctx, list[0] as SubmitOptions, cwd);
  const plans = [first, ...list.slice(1).map((opts) => planAlike(ctx, first, opts, cwd))];
  const opts0 = list[0] as SubmitOptions;
  const reaching = reachInOrder(ctx, first.nodes, opts0.node, first.limits.gpus, first.live, opts0.priority ?? 0);
  reaching.catch(() => undefined);
  const templates = readTemplates(ctx, true);
  const jobs = await recordPendingMany(
    ctx,
    list.map((opts, i) => ({ opts, plan: plans[i] as SubmitPlan })),
  );
  let reached: ReachedNode[] = [];
  let reachError: Error | null = null;
  try {
    reached = await reaching;
  } catch (e) {
    reachError = e as Error;
  }
  const results: Array<Job | Error> = new Array(jobs.length);
  const batchable = (i: number) => {
    const p = plans[i] as SubmitPlan;
    // A graded job needs grade.py and fingerprint.py beside it: the one-job path carries them.
    const o = list[i] as SubmitOptions;
    const graded = gradeArgs(o.competition ? ctx.config.competitions[o.competition] : undefined).length > 0;
    return p.uploads === null && p.kept.bytes <= INLINE_PROGRAM_MAX && p.isolation !== 'docker' && !graded;
  };
  const nodeOk = reached.length > 0 && reached.every((r) => r.node.transport === 'local' || r.node.transport === 'ssh');
  const inBatch = nodeOk ? jobs.map((_, i) => i).filter(batchable) : [];
  if (inBatch.length > 0) {
    const batch = { ctx, list, plans, jobs, templates, reached, progress };
    for (let k = 0; k < inBatch.length; k += BATCH_MAX) {
      const decided = await startInBatches(batch, inBatch.slice(k, k + BATCH_MAX));
      await recordDecided(ctx, jobs, decided, results);
    }
  }
  const rest = jobs.map((_, i) => i).filter((i) => results[i] === undefined);
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < rest.length; k = next++) {
      const i = rest[k] as number;
      try {
        const l = list[i] as SubmitOptions;
        const started = await launchFirst(
          ctx,
          l,
          plans[i] as SubmitPlan,
          jobs[i] as Job,
          templates,
          reached,
          reachError,
        );
        results[i] = started.job;
      } catch (e) {
        results[i] = e as Error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(ONE_BY_ONE_CONCURRENCY, rest.length) }, worker));
  return { results, links: reached.map((r) => openNodeLink(ctx, r.node, { initial: r.transport })) };
}

/** Another file with the first one's plan: its own program (checked and kept) and uploads. */
function planAlike(ctx: AppContext, first: SubmitPlan, opts: SubmitOptions, cwd: string): SubmitPlan {
  const { checked, kept } = keepSubmitted(ctx, opts, cwd);
  const uploads =
    opts.include && opts.include.length > 0
      ? planUploads(
          { path: kept.path, name: checked.name, executable: checked.hasShebang, size: kept.bytes },
          opts.include,
          cwd,
          ctx.config.defaults.maxUploadBytes,
        )
      : null;
  for (const n of first.nodes)
    if (!commandFor(checked.name, n.python, checked.hasShebang, []))
      throw usageError(`${opts.file}: gpuq runs .py and .sh files, or scripts that start with a #! line.`);
  return { ...first, checked, kept, uploads };
}

interface Batch {
  ctx: AppContext;
  list: SubmitOptions[];
  plans: SubmitPlan[];
  jobs: Job[];
  templates: Templates;
  reached: ReachedNode[];
  progress?: BulkProgress;
}

/** What became of a job of the batch: started on a node (as the batch saw it), or an error. */
type Decided =
  | { kind: 'started'; node: NodeConfig; outcome: BatchOutcome; bootId: string | null }
  | { kind: 'error'; error: Error };

/**
 * Starts the jobs `idx` on the first reached node that takes them, in one round trip. When the
 * link drops during it, the node is asked what started (adopted), and what did not is tried on
 * the next node.
 */
async function startInBatches(b: Batch, idx: number[]): Promise<Map<number, Decided>> {
  const decided = new Map<number, Decided>();
  let left = idx;
  let last: Error | null = null;
  for (const r of b.reached) {
    if (left.length === 0) break;
    const dirs = left.map((i) => `${r.node.workdir.replace(/\/+$/, '')}/jobs/${(b.jobs[i] as Job).id}`);
    const batchJobs: BatchJob[] = left.map((i, k) => {
      const plan = b.plans[i] as SubmitPlan;
      return {
        dir: dirs[k] as string,
        wrapper: wrapperFor(b.ctx, b.list[i] as SubmitOptions, plan, b.jobs[i] as Job, b.templates, r.node),
        programName: `work/${plan.checked.name}`,
        program: readFileSync(plan.kept.path),
        executable: plan.checked.hasShebang,
      };
    });
    b.progress?.onStarting(left.length, r.node.name);
    try {
      const out = await launchBatch(r.transport, batchJobs, { monitor: b.templates.monitor, queue: b.templates.queue });
      for (const [k, i] of left.entries()) decided.set(i, fromOutcome(r.node, out.jobs[k] as BatchOutcome, out.bootId));
      return decided;
    } catch (e) {
      if (!isRetryable(e)) {
        for (const i of left) decided.set(i, { kind: 'error', error: e as Error });
        return decided;
      }
      last = e as Error;
      // The link dropped: whatever started there is adopted; the rest goes on to the next node.
      const link = openNodeLink(b.ctx, r.node, { onReconnecting: () => undefined });
      const still: number[] = [];
      try {
        for (const [k, i] of left.entries()) {
          const adopted = await link
            .run((t) => adoptLaunch(t, dirs[k] as string), { maxAttempts: 2 })
            .catch(() => undefined);
          if (adopted === null) still.push(i);
          else if (adopted === undefined)
            decided.set(i, {
              kind: 'error',
              error: new NodeUnreachableError(
                r.node.name,
                `the connection dropped while starting job ${(b.jobs[i] as Job).id} (${(e as NodeUnreachableError).cause_}); it may be running there`,
                `See where it stands with: gpuq wait ${(b.jobs[i] as Job).id}`,
              ),
            });
          else
            decided.set(i, {
              kind: 'started',
              node: r.node,
              outcome: {
                kind: 'status',
                supervisorPid: adopted.status.supervisorPid ?? 0,
                dir: adopted.dir,
                status: adopted.status,
                said: '',
              },
              bootId: adopted.status.bootId ?? null,
            });
        }
      } finally {
        await link.close();
      }
      left = still;
    }
  }
  for (const i of left) decided.set(i, { kind: 'error', error: last ?? new Error('no node could run it') });
  return decided;
}

/** A job's outcome in the batch as started, or the error that stopped it. */
function fromOutcome(node: NodeConfig, o: BatchOutcome, bootId: string | null): Decided {
  const said = o.said.trim();
  switch (o.kind) {
    case 'status':
    case 'launched':
      return { kind: 'started', node, outcome: o, bootId };
    case 'refused':
      return { kind: 'error', error: leaseRefusedError(node.name, said) };
    case 'busy':
      return {
        kind: 'error',
        error: new NodeFaultError(node.name, `on node ${node.name}, the job is already running`),
      };
    case 'skipped':
      return {
        kind: 'error',
        error: new NodeFaultError(
          node.name,
          `on node ${node.name}, not started: the first job of the batch did not start`,
        ),
      };
    default:
      return {
        kind: 'error',
        error: new NodeFaultError(
          node.name,
          `on node ${node.name}, the supervisor did not start${said ? `: ${said.split('\n').slice(-2).join(' ')}` : ''}`,
        ),
      };
  }
}

/**
 * The ledger entry of a job the batch started. The supervisor's status, where it wrote one,
 * says whether it runs or waits in the GPU queue; one that has not yet said it runs is recorded
 * as queued when it needs GPUs (the next look at the node brings it up to date) and as running
 * otherwise (a job without GPUs never waits).
 */
export function startedEntry(j: Job, node: NodeConfig, o: BatchOutcome, bootId: string | null, at: string): Job {
  const s = o.status;
  const remote = {
    dir: o.dir,
    supervisorPid: s?.supervisorPid ?? (o.supervisorPid > 0 ? o.supervisorPid : null),
    pid: s?.pid ?? null,
    bootId: s?.bootId ?? bootId,
    boundary: s?.boundary ?? null,
  };
  const base = { ...j, node: node.name, remote };
  const runs = s !== null && s.pid !== null && (s.state === 'running' || s.state === 'exited');
  if (runs) {
    const gpus = Array.isArray(s.gpus) ? s.gpus : [];
    return withSupervisorTimes(
      moveTo(
        { ...base, gpus, queue: null },
        'running',
        at,
        `started on ${node.name}${gpus.length ? ` GPU ${gpus.join(',')}` : ''}, pid ${s.pid}`,
      ),
      { startedAtMs: s.startedAtMs },
    );
  }
  if (s?.state === 'queued' || j.limits.gpus > 0)
    return moveTo({ ...base, gpus: [] }, 'queued', at, `queued on ${node.name}`);
  return moveTo(
    { ...base, gpus: [], queue: null },
    'running',
    at,
    `started on ${node.name} (supervisor pid ${remote.supervisorPid ?? '?'}; its program's start not yet seen)`,
  );
}

/** Records every decided job in one ledger update: started, or never started with its error. */
async function recordDecided(
  ctx: AppContext,
  jobs: Job[],
  decided: Map<number, Decided>,
  results: Array<Job | Error>,
): Promise<void> {
  const at = ctx.now().toISOString();
  const byId = new Map<string, { i: number; d: Decided }>();
  for (const [i, d] of decided) byId.set((jobs[i] as Job).id, { i, d });
  const done = await ctx.ledger.update((all) => {
    const out: Array<{ i: number; job: Job }> = [];
    const next = all.map((j) => {
      const hit = byId.get(j.id);
      if (!hit || j.state !== 'pending') return j;
      const { d, i } = hit;
      const updated =
        d.kind === 'started'
          ? startedEntry(j, d.node, d.outcome, d.bootId, at)
          : finish(moveTo(j, 'running', at, null), neverStarted(d.error.message), at);
      out.push({ i, job: updated });
      return updated;
    });
    return { jobs: next, result: out };
  });
  for (const { i, job } of done) {
    const d = decided.get(i) as Decided;
    if (d.kind === 'started') results[i] = job;
    else
      results[i] =
        d.error instanceof UserError
          ? d.error
          : new NodeFaultError(job.node, `job ${job.id} could not start: ${d.error.message}`);
  }
}

/** `submit --wait` of several files: waits for each started job over the links submitMany kept. */
export async function waitMany(
  ctx: AppContext,
  jobs: Job[],
  links: NodeLink[],
  onDone: (job: Job) => void,
  watch?: import('./wait.js').WaitWatch,
): Promise<Job[]> {
  const { waitJob } = await import('./wait.js');
  const byNode = new Map(links.map((l) => [l.node.name, l]));
  return Promise.all(
    jobs.map(async (j) => {
      const done = await waitJob(ctx, j, undefined, byNode.get(j.node), watch);
      onDone(done);
      return done;
    }),
  );
}
