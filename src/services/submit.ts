/**
 * `gpuq submit`: check the file, record the job, pick a node and GPUs, upload, start the
 * supervisor, record where it runs.
 */
import { randomBytes } from 'node:crypto';
import { openSync, readFileSync, readSync, closeSync, statSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { DEFAULT_FOREIGN_MIB, DEFAULT_LOCK_DIR } from '../core/queue.js';
import { isRetryable, NodeFaultError, NodeUnreachableError, UserError, usageError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { formatBytes } from '../core/format.js';
import { gradeArgs } from '../core/grading.js';
import { makeJobId } from '../core/ids.js';
import { builtinLimits, resolveLimits } from '../core/limits.js';
import { moveTo, withSupervisorTimes } from '../core/job.js';
import { sh } from '../core/quote.js';
import { rankNodes } from '../core/schedule.js';
import type { Isolation, Job, Limits } from '../core/types.js';
import { neverStarted } from '../core/verdicts.js';
import type { NodeConfig } from '../config/types.js';
import { adoptLaunch, launchJob, type LaunchFiles } from '../node/protocol.js';
import { commandFor, type DockerSpec, renderWrapper, type WrapperSpec } from '../node/wrapper.js';
import { containerName, dockerRunOptions, NODE_TOKENS } from '../core/docker-args.js';
import { graderContainerArgs } from './grader-container.js';
import type { AppContext } from './context.js';
import type { WaitWatch } from './wait.js';
import { findJob, recordVerdict } from './jobs.js';
import { launchOnSlurm } from './slurm.js';
import { withLocalGpus } from './local-gpus.js';
import { reachCandidates, type ReachedNode } from './nodes.js';
import { openNodeLink } from './reconnect.js';
import { planUploads, type UploadPlan, uploadStream } from './uploads.js';
import type { Transport } from '../transport/transport.js';
import { type KeptProgram, keepProgram, keptProgramPath, readKeptProgram } from '../ledger/programs.js';

export interface SubmitOptions {
  file: string;
  node: string | null;
  name: string | null;
  competition: string | null;
  /** Limits given on the command line; the rest come from competition, config and built-in defaults. */
  limits: Partial<Limits>;
  isolation: Isolation | null;
  image: string | null;
  env: Record<string, string>;
  args: string[];
  /** `--priority`: higher runs first in the node's GPU queue (absent: 0). */
  priority?: number;
  /**
   * `gpuq rerun`: the program is the kept copy with this SHA-256 (ledger/programs.ts), not the
   * file at `file` (the original's path, recorded as the job's file and naming the program).
   */
  keptSha256?: string;
  /** `--include PATH…`: files and folders uploaded next to the program (services/uploads.ts). */
  include?: string[];
  /** `--keep-container`: under Docker, keep the job's container for a post-mortem. */
  keepContainer?: boolean;
}

interface CheckedFile {
  path: string;
  name: string;
  hasShebang: boolean;
}

/** Refuses what cannot be a program: missing, a folder, empty, binary or too large. */
export function checkFile(file: string, cwd: string, maxBytes: number): CheckedFile {
  const path = resolve(cwd, file);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw usageError(`${file}: no such file.`, 'Check the path and try again.');
  }
  if (st.isDirectory()) throw usageError(`${file} is a folder, not a program.`, 'Submit the .py file to run.');
  if (/\.ipynb$/i.test(path))
    throw usageError(
      `${file} is a Jupyter notebook; gpuq runs scripts, not notebooks.`,
      `Convert it first: jupyter nbconvert --to script ${sh(file)}, then submit the .py file it writes.`,
    );
  if (!st.isFile()) throw usageError(`${file} is not a regular file.`);
  if (st.size === 0) throw usageError(`${file} is empty.`, 'Submit a file with the program in it.');
  if (st.size > maxBytes) {
    throw usageError(
      `${file} is ${formatBytes(st.size)}, over the ${formatBytes(maxBytes)} limit for a submitted file.`,
      'Ship data separately, or raise defaults.maxFileSize in the config.',
    );
  }
  const head = Buffer.alloc(Math.min(st.size, 8192));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const binary = () =>
    usageError(`${file} looks like a binary file, not a program's source.`, 'Submit the source (.py) file.');
  if (head.includes(0)) throw binary();
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path));
  } catch {
    throw binary();
  }
  return { path, name: basename(path), hasShebang: head.subarray(0, 2).toString() === '#!' };
}

/** A node's GPUs for ranking: a Slurm node's are Slurm's to give, so it can take any count. */
function gpusOf(n: NodeConfig, need: number): number[] {
  return n.transport === 'slurm' ? [...Array(Math.max(need, n.gpus.length)).keys()] : n.gpus;
}

/** What to do when a local node has no GPU for the job: the config's word, or none asked. */
function noGpuHint(node: string): string {
  return (
    `Submit without --gpus, or list the GPUs gpuq may use there in the config: ` +
    `{"nodes": {${JSON.stringify(node)}: {"transport": "local", "gpus": [0]}}} (README, "Configuration").`
  );
}

/**
 * Nodes to try in order: the one asked for, else the default, else the least busy. `nodes` is
 * the config's, with the GPUs of local nodes found (services/local-gpus).
 */
function candidates(
  ctx: AppContext,
  opts: SubmitOptions,
  gpus: number,
  live: Job[],
  nodes: Record<string, NodeConfig> = ctx.config.nodes,
): NodeConfig[] {
  if (opts.node) {
    const n = nodes[opts.node];
    if (!n) throw usageError(`unknown node "${opts.node}".`, `Nodes in the config: ${Object.keys(nodes).join(', ')}.`);
    if (n.transport !== 'slurm' && n.gpus.length < gpus) {
      if (n.gpusNotFound)
        throw usageError(`no GPU was found for node ${n.name}: ${n.gpusNotFound}.`, noGpuHint(n.name));
      throw usageError(`node ${n.name} has ${n.gpus.length} GPU(s); the job asks for ${gpus}.`);
    }
    return [n];
  }
  const running = (name: string) => live.filter((j) => j.node === name && j.state !== 'done').length;
  const ranked = rankNodes(
    Object.values(nodes).map((n) => ({
      name: n.name,
      runningJobs: running(n.name),
      load: null,
      gpus: gpusOf(n, gpus),
    })),
    gpus,
  ).map((r) => nodes[r.name] as NodeConfig);
  const all = Object.values(nodes);
  if (ranked.length === 0 && all.length === 1 && all[0]?.gpusNotFound)
    throw usageError(`no GPU was found for node ${all[0].name}: ${all[0].gpusNotFound}.`, noGpuHint(all[0].name));
  if (ranked.length === 0)
    throw usageError(
      `no node has ${gpus} GPU(s) for this job.`,
      'Ask for fewer with --gpus, or add GPUs to a node in the config.',
    );
  const def = ctx.config.defaults.node;
  if (def && ranked.some((n) => n.name === def))
    return [nodes[def] as NodeConfig, ...ranked.filter((n) => n.name !== def)];
  return ranked;
}

/**
 * Connects to the nodes to try: the one asked for (its failure is the user's answer, exit 3);
 * else the default node first, then the others at once, ranked (for a GPU job) by when it
 * would start there, then by running jobs and load. Each node that does not answer is named on stderr.
 */
export async function reachInOrder(
  ctx: AppContext,
  nodes: NodeConfig[],
  asked: string | null,
  gpus: number,
  live: Job[],
  priority = 0,
): Promise<ReachedNode[]> {
  const def = ctx.config.defaults.node;
  const groups =
    !asked && def && nodes.length > 1 && nodes[0]?.name === def ? [nodes.slice(0, 1), nodes.slice(1)] : [nodes];
  const ledgerJobs = (name: string) => live.filter((j) => j.node === name && j.state !== 'done').length;
  const tell = (n: NodeConfig, e: unknown) =>
    ctx.out.info(
      `node ${n.name} is unreachable (${e instanceof NodeUnreachableError ? e.cause_ : (e as Error).message}); ` +
        `trying the other nodes.`,
    );
  let last: unknown = null;
  for (const [i, group] of groups.entries()) {
    try {
      return await reachCandidates(ctx, group, { ledgerJobs, gpus, priority, onUnreachable: tell });
    } catch (e) {
      last = e;
      if (group.length === 1 && i + 1 < groups.length) tell(group[0] as NodeConfig, e);
    }
  }
  throw last;
}

/** Upload progress on stderr, for a program over 8 MiB when stderr is a terminal. */
function progressBar(ctx: AppContext, size: number): ((done: number, total: number) => void) | undefined {
  if (size <= 8 * 1024 ** 2 || !ctx.out.stderrIsTTY) return undefined;
  let lastPct = -1;
  return (done, total) => {
    const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
    if (pct === lastPct) return;
    lastPct = pct;
    const width = 30;
    const fill = Math.round((pct / 100) * width);
    const mib = (b: number) => (b / 1024 ** 2).toFixed(1);
    ctx.out.raw(
      'stderr',
      `\rgpuq: uploading [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ` +
        `${pct}% ${mib(done)}/${mib(total)} MiB${pct === 100 ? '\n' : ''}`,
    );
  };
}

/** What `submit` decided before touching the network: step 1 of a submit. */
export interface SubmitPlan {
  checked: CheckedFile;
  isolation: Isolation;
  /** The container image (on the first node to try) under Docker, else null. */
  image: string | null;
  limits: Limits;
  /** Nodes to try, in order. */
  nodes: NodeConfig[];
  /** The live ledger as read once, for ranking nodes (the GPU choice reads it again, locked). */
  live: Job[];
  /** The program's kept copy (what is uploaded, and what `gpuq rerun` runs again). */
  kept: KeptProgram;
  /** With --include: the program and the included files, uploaded as one stream. */
  uploads: UploadPlan | null;
}

/**
 * Step 1, no network: checks the file, the competition and the isolation, resolves the limits,
 * lists the candidate nodes and checks the program can run on each. Throws a usage error.
 */
export async function planSubmit(ctx: AppContext, opts: SubmitOptions, cwd: string): Promise<SubmitPlan> {
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
  if (opts.competition && !ctx.config.competitions[opts.competition]) {
    throw usageError(
      `unknown competition "${opts.competition}".`,
      `Competitions in the config: ${Object.keys(ctx.config.competitions).join(', ') || 'none'}.`,
    );
  }
  const isolation = opts.isolation ?? ctx.config.defaults.isolation;
  if (opts.image !== null && isolation !== 'docker')
    throw usageError('--image names a container image, and this job runs without one.', 'Add --isolation docker.');
  const limits = resolveLimits(
    builtinLimits(),
    ctx.config.defaults,
    opts.competition ? ctx.config.competitions[opts.competition]?.limits : undefined,
    opts.limits,
  );
  const live = await ctx.ledger.readLive();
  const competition = opts.competition ? ctx.config.competitions[opts.competition] : undefined;
  // Local nodes without GPUs in the config learn theirs from nvidia-smi (the one asked for alone).
  const asked = opts.node ? ctx.config.nodes[opts.node] : undefined;
  const found = await withLocalGpus(ctx, asked ? [asked] : Object.values(ctx.config.nodes));
  const known = { ...ctx.config.nodes, ...Object.fromEntries(found.map((n) => [n.name, n])) };
  const nodes = candidates(ctx, opts, limits.gpus, live, known).filter(
    // A container is a boundary of its own, whatever the node's setting.
    (n) => !competition?.requireBoundary || n.boundary !== 'none' || isolation === 'docker',
  );
  if (nodes.length === 0)
    throw usageError(
      `competition ${opts.competition} requires a trust boundary, and ` +
        `${opts.node ? `node ${opts.node} runs` : 'every node runs'} jobs without one (boundary "none").`,
      'Set the node\'s "boundary" to "auto" (README, "Trust model"), ' +
        'or set the competition\'s "requireBoundary" to false.',
    );
  for (const n of nodes) {
    if (!commandFor(checked.name, n.python, checked.hasShebang, [])) {
      throw usageError(`${opts.file}: gpuq runs .py and .sh files, or scripts that start with a #! line.`);
    }
  }
  if (isolation === 'docker') {
    const without = nodes.filter((n) => imageFor(ctx, opts, n) === null);
    if (without.length === nodes.length)
      throw usageError(
        `--isolation docker needs an image, and none is given for ${opts.node ? `node ${opts.node}` : 'any node'}.`,
        'Give one with --image NAME, or set the competition\'s "image", the node\'s docker.image or defaults.image.',
      );
    const withImage = nodes.filter((n) => !without.includes(n));
    const image = imageFor(ctx, opts, withImage[0] as NodeConfig);
    return { checked, isolation, image, limits, nodes: withImage, live, kept, uploads };
  }
  return { checked, isolation, image: null, limits, nodes, live, kept, uploads };
}

/** The image a Docker job runs on `node`: --image, the competition's, the node's, the default's. */
function imageFor(ctx: AppContext, opts: SubmitOptions, node: NodeConfig): string | null {
  const competition = opts.competition ? ctx.config.competitions[opts.competition] : undefined;
  return opts.image ?? competition?.image ?? node.docker.image ?? ctx.config.defaults.image ?? null;
}

/** A competition folder for a container's mount: "~/…" is the node account's home (filled in on the node). */
function nodeFolder(path: string | null): string | null {
  return path?.startsWith('~/') ? `${NODE_TOKENS.home}/${path.slice(2)}` : path;
}

/**
 * The container of a Docker job on `node` (src/core/docker-args.ts), or undefined on the host.
 */
function containerFor(
  ctx: AppContext,
  opts: SubmitOptions,
  plan: SubmitPlan,
  job: Job,
  node: NodeConfig,
  submitter: string,
): DockerSpec | undefined {
  if (plan.isolation !== 'docker') return undefined;
  const competition = opts.competition ? ctx.config.competitions[opts.competition] : undefined;
  const image = imageFor(ctx, opts, node) as string;
  const l = plan.limits;
  const options = dockerRunOptions({
    mounts: { role: 'run', work: NODE_TOKENS.work, data: nodeFolder(competition?.data ?? null) },
    jobId: job.id,
    submitter,
    image,
    network: competition?.network ?? false,
    memoryBytes: l.memoryBytes,
    pids: l.pids,
    files: l.files,
    fileSizeBytes: l.fileSizeBytes,
    cpuTimeS: l.cpuTimeS,
    graceS: l.graceS,
    gpus: l.gpus,
    env: opts.env,
    extraFlags: [...(node.docker.runtime ? [`--runtime=${node.docker.runtime}`] : []), ...node.docker.extraFlags],
    command: [],
  });
  return {
    command: node.docker.command,
    image,
    options,
    container: containerName(job.id, 'run'),
    keep: opts.keepContainer === true,
  };
}

/**
 * The hook that keeps what is submitted: checks the file and keeps a copy of its content in the
 * state folder (ledger/programs.ts), which is what gets uploaded; for a rerun (`keptSha256`),
 * the kept copy itself, named after the original file.
 */
export function keepSubmitted(
  ctx: AppContext,
  opts: SubmitOptions,
  cwd: string,
): { checked: CheckedFile; kept: KeptProgram } {
  const max = ctx.config.defaults.maxFileBytes;
  if (opts.keptSha256 !== undefined) {
    const content = readKeptProgram(ctx.config.stateDir, opts.keptSha256, max);
    if (content === null)
      throw usageError(
        `the kept copy of ${opts.file} (${keptProgramPath(ctx.config.stateDir, opts.keptSha256)}) is gone.`,
        'Submit the program again with: gpuq submit FILE',
      );
    const checked = {
      path: opts.file,
      name: basename(opts.file),
      hasShebang: content.subarray(0, 2).toString() === '#!',
    };
    return { checked, kept: keepProgram(ctx.config.stateDir, content) };
  }
  const checked = checkFile(opts.file, cwd, max);
  return { checked, kept: keepProgram(ctx.config.stateDir, readFileSync(checked.path)) };
}

/** A new job record, pending: what step 2 adds to the ledger for one file. */
function pendingJob(opts: SubmitOptions, plan: SubmitPlan, id: string, now: string): Job {
  return {
    id,
    name: opts.name ?? plan.checked.name,
    file: plan.checked.path,
    node: (plan.nodes[0] as NodeConfig).name,
    gpus: [],
    competition: opts.competition,
    state: 'pending',
    isolation: plan.isolation,
    image: plan.image,
    limits: plan.limits,
    env: opts.env,
    args: opts.args,
    createdAt: now,
    startedAt: null,
    endedAt: null,
    history: [{ state: 'pending', at: now, note: null }],
    remote: null,
    verdict: null,
    priority: opts.priority ?? 0,
    kept: {
      sha256: plan.kept.sha256,
      bytes: plan.kept.bytes,
      node: opts.node,
      ...(opts.include?.length ? { included: opts.include.length } : {}),
    },
  };
}

/** A job id not in `taken` (nor given out earlier in the same update). */
function freshId(taken: (id: string) => boolean): string {
  let id = makeJobId(randomBytes(8));
  while (taken(id)) id = makeJobId(randomBytes(8));
  return id;
}

/** Step 2: records the job as pending, before anything touches a node's files. */
function recordPending(ctx: AppContext, opts: SubmitOptions, plan: SubmitPlan): Promise<Job> {
  return recordPendingMany(ctx, [{ opts, plan }]).then((jobs) => jobs[0] as Job);
}

/** Step 2 for several files: all pending in one ledger update, in the order given. */
export function recordPendingMany(
  ctx: AppContext,
  list: Array<{ opts: SubmitOptions; plan: SubmitPlan }>,
): Promise<Job[]> {
  const now = ctx.now().toISOString();
  return ctx.ledger.update((jobs) => {
    const ids = new Set(jobs.map((j) => j.id));
    const created = list.map(({ opts, plan }) => {
      const id = freshId((x) => ids.has(x));
      ids.add(id);
      return pendingJob(opts, plan, id, now);
    });
    return { jobs: [...jobs, ...created], result: created };
  });
}

/**
 * Records the job running on `node`, where it was launched (or adopted); or queued there, when
 * its supervisor waits in the node's GPU queue (the GPUs are learnt when it starts).
 */
export function recordStarted(
  ctx: AppContext,
  jobId: string,
  node: NodeConfig,
  gpus: number[],
  remote: NonNullable<Job['remote']>,
  note: string,
  times: { startedAtMs?: unknown; state?: unknown } | null,
): Promise<Job> {
  const at = ctx.now().toISOString();
  return ctx.ledger.updateJob(jobId, (j) =>
    times?.state === 'queued'
      ? moveTo({ ...j, node: node.name, gpus: [], remote }, 'queued', at, `queued on ${node.name}`)
      : withSupervisorTimes(
          moveTo({ ...j, node: node.name, gpus, remote, queue: null }, 'running', at, note),
          times ? { startedAtMs: times.startedAtMs } : null,
        ),
  );
}

/** Who submits, for the node's lease files and queue reasons: user@host of this machine. */
export function submitterName(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry for this uid
  }
  return `${user}@${hostname()}`.replace(/[^\w.@-]/g, '_').slice(0, 100);
}

/** Templates read once per submit. */
export interface Templates {
  wrapper: string;
  monitor: string;
  queue: string;
  /** templates/unpack.py, read when the submit uploads --include files. */
  unpack?: string;
}

/** The templates a launch uploads, read once (with `unpack`: templates/unpack.py too, for --include). */
export function readTemplates(ctx: AppContext, unpack: boolean): Templates {
  const read = (name: string) => readFileSync(join(ctx.packageRoot, 'templates', name), 'utf8');
  return {
    wrapper: read('wrapper.sh'),
    monitor: read('monitor.py'),
    queue: read('queue.py'),
    ...(unpack ? { unpack: read('unpack.py') } : {}),
  };
}

/** The --include upload of a launch (with its progress bar), or undefined for the program alone. */
function bundleOf(ctx: AppContext, plan: SubmitPlan, templates: Templates): LaunchFiles['bundle'] {
  const uploads = plan.uploads;
  if (!uploads) return undefined;
  const unpackScript = templates.unpack ?? readFileSync(join(ctx.packageRoot, 'templates', 'unpack.py'), 'utf8');
  return {
    source: () => uploadStream(uploads, progressBar(ctx, uploads.totalBytes)),
    maxBytes: ctx.config.defaults.maxUploadBytes,
    unpackScript,
  };
}

/**
 * The wrapper's competition part (issue 13): data, answers and grade.py's arguments (those that
 * put the grader in a container first, for a Docker job).
 */
function competitionSpec(ctx: AppContext, name: string | null, container: string[] = []): WrapperSpec['competition'] {
  const c = name ? ctx.config.competitions[name] : undefined;
  if (!c) return undefined;
  const grade = gradeArgs(c);
  return { data: c.data, answers: c.answers, grade: grade.length > 0 ? [...container, ...grade] : grade };
}

/** A Docker job's grader container (services/grader-container), or none on the host. */
function graderContainerOf(
  ctx: AppContext,
  opts: SubmitOptions,
  job: Job,
  node: NodeConfig,
  docker: DockerSpec | undefined,
  submitter: string,
): string[] {
  if (!docker || !opts.competition) return [];
  const comp = ctx.config.competitions[opts.competition];
  return graderContainerArgs(job, comp, node, docker.image, submitter, docker.keep);
}

/** templates/grade.py and fingerprint.py, uploaded with a job its supervisor grades. */
function gradeFiles(ctx: AppContext, name: string | null): LaunchFiles['grade'] {
  if (gradeArgs(name ? ctx.config.competitions[name] : undefined).length === 0) return undefined;
  return {
    script: readFileSync(join(ctx.packageRoot, 'templates', 'grade.py'), 'utf8'),
    fingerprint: readFileSync(join(ctx.packageRoot, 'templates', 'fingerprint.py'), 'utf8'),
  };
}

/**
 * The job's supervisor, rendered for `node` (templates/wrapper.sh; node/wrapper.ts); `docker` is
 * its container where the job runs in one (containerFor).
 */
export function wrapperFor(
  ctx: AppContext,
  opts: SubmitOptions,
  plan: SubmitPlan,
  job: Job,
  templates: Templates,
  node: NodeConfig,
  docker?: DockerSpec,
  submitter: string = submitterName(),
): string {
  const need = plan.limits.gpus;
  return renderWrapper(templates.wrapper, {
    jobId: job.id,
    // In a container, the image's python3 (the node's "python" is a path on the host).
    command: commandFor(
      plan.checked.name,
      docker ? 'python3' : node.python,
      plan.checked.hasShebang,
      opts.args,
    ) as string[],
    docker,
    env: opts.env,
    limits: plan.limits,
    cpuShare: node.gpus.length > 0 && need > 0 ? { num: need, den: node.gpus.length } : { num: 1, den: 1 },
    // A GPU job's devices are the ones its node leases; one without GPUs sees none.
    cudaDevices: node.gpus.length > 0 ? '' : null,
    queue: {
      nodeName: node.name,
      need,
      nodeGpus: node.gpus,
      lockDir: node.lockDir ?? DEFAULT_LOCK_DIR,
      priority: opts.priority ?? 0,
      submitter,
      foreignMiB: Math.floor((node.foreignGpuMemoryBytes ?? DEFAULT_FOREIGN_MIB * 1024 ** 2) / 1024 ** 2),
    },
    // A container has cgroups of its own (Docker's --memory and --pids-limit).
    useCgroups: !docker,
    boundary: node.boundary,
    runAs: node.runAs,
    requireBoundary: opts.competition ? (ctx.config.competitions[opts.competition]?.requireBoundary ?? false) : false,
    hideDirs: node.transport === 'local' ? [ctx.config.stateDir] : [],
    competition: competitionSpec(ctx, opts.competition, graderContainerOf(ctx, opts, job, node, docker, submitter)),
  });
}

/** What trying one node ended with. */
type LaunchOutcome =
  | { kind: 'started'; job: Job }
  /** Nothing runs there (the node said so): the next node may be tried. */
  | { kind: 'not-started'; error: NodeUnreachableError }
  /** Stop trying: the node answered with a fault, or gpuq failed. */
  | { kind: 'failed'; error: Error };

/**
 * Step 3 on one node: claim GPUs, render the wrapper, launch. When the link drops during the
 * launch, asks the node (again) whether the supervisor started, so the job neither runs twice
 * nor runs unrecorded: adopted when it did, tried elsewhere when it did not, recorded as
 * unconfirmed (and NodeUnreachableError thrown) when the node cannot be asked.
 */
async function launchOn(
  ctx: AppContext,
  opts: SubmitOptions,
  plan: SubmitPlan,
  job: Job,
  templates: Templates,
  node: NodeConfig,
  transport: Transport,
): Promise<LaunchOutcome> {
  const dir = `${node.workdir.replace(/\/+$/, '')}/jobs/${job.id}`;
  if (node.transport === 'slurm') return launchOnSlurmNode(ctx, opts, plan, job, templates, node, transport, dir);
  let gpus: number[] = [];
  try {
    // The node picks the GPUs (its queue and leases); the ledger learns them when the job starts.
    await ctx.ledger.updateJob(job.id, (j) => ({ ...j, node: node.name, gpus: [] }));
    const submitter = submitterName();
    const docker = containerFor(ctx, opts, plan, job, node, submitter);
    const wrapper = wrapperFor(ctx, opts, plan, job, templates, node, docker, submitter);
    const started = await launchJob(
      transport,
      {
        dir,
        localProgram: plan.kept.path,
        programName: `work/${plan.checked.name}`,
        executable: plan.checked.hasShebang,
        wrapper,
        monitor: templates.monitor,
        queue: templates.queue,
        grade: gradeFiles(ctx, opts.competition),
        onProgress: plan.uploads ? undefined : progressBar(ctx, plan.kept.bytes),
        bundle: bundleOf(ctx, plan, templates),
      },
      (w) => ctx.out.info(w),
    );
    const s = started.status;
    gpus = Array.isArray(s.gpus) ? s.gpus : [];
    const running = await recordStarted(
      ctx,
      job.id,
      node,
      gpus,
      {
        dir: started.dir,
        supervisorPid: s.supervisorPid > 0 ? s.supervisorPid : null,
        pid: s.pid,
        bootId: s.bootId,
        boundary: s.boundary ?? 'none',
      },
      `started on ${node.name}${gpus.length ? ` GPU ${gpus.join(',')}` : ''}, pid ${s.pid}`,
      s,
    );
    return { kind: 'started', job: running };
  } catch (e) {
    if (!isRetryable(e)) return { kind: 'failed', error: e as Error };
    const link = openNodeLink(ctx, node, { onReconnecting: () => undefined });
    const adopted = await link
      .run((t) => adoptLaunch(t, dir), { maxAttempts: 2 })
      .catch(() => undefined)
      .finally(() => link.close());
    if (adopted) {
      const s = adopted.status;
      const running = await recordStarted(
        ctx,
        job.id,
        node,
        Array.isArray(s.gpus) ? s.gpus : [],
        {
          dir: adopted.dir,
          supervisorPid: s.supervisorPid ?? null,
          pid: s.pid ?? null,
          bootId: s.bootId ?? null,
          boundary: s.boundary ?? null,
        },
        `started on ${node.name} (confirmed after the connection dropped), pid ${s.pid}`,
        s,
      );
      return { kind: 'started', job: running };
    }
    if (adopted === undefined) {
      await recordStarted(
        ctx,
        job.id,
        node,
        gpus,
        { dir, supervisorPid: null, pid: null, bootId: null },
        `start unconfirmed: ${e.cause_}`,
        null,
      );
      throw new NodeUnreachableError(
        node.name,
        `the connection dropped while starting job ${job.id} (${e.cause_}); it may be running there`,
        `See where it stands with: gpuq wait ${job.id}`,
      );
    }
    return { kind: 'not-started', error: e };
  }
}

/**
 * Step 3 on a Slurm node (services/slurm.ts): the same job folder and supervisor, started by
 * sbatch; Slurm queues it and allocates its GPUs (no lease on the node). A refusal is final.
 */
async function launchOnSlurmNode(
  ctx: AppContext,
  opts: SubmitOptions,
  plan: SubmitPlan,
  job: Job,
  templates: Templates,
  node: NodeConfig,
  transport: Transport,
  dir: string,
): Promise<LaunchOutcome> {
  try {
    await ctx.ledger.updateJob(job.id, (j) => ({ ...j, node: node.name, gpus: [] }));
    const wrapper = renderWrapper(templates.wrapper, {
      jobId: job.id,
      command: commandFor(plan.checked.name, node.python, plan.checked.hasShebang, opts.args) as string[],
      env: opts.env,
      limits: plan.limits,
      cpuShare: { num: 1, den: 1 },
      cudaDevices: '',
      useCgroups: true,
      boundary: node.boundary,
      runAs: node.runAs,
      requireBoundary: opts.competition ? (ctx.config.competitions[opts.competition]?.requireBoundary ?? false) : false,
      // sbatch on this machine: the job may run here too, so gpuq's state folder stays hidden.
      hideDirs: node.host === null ? [ctx.config.stateDir] : [],
      fromSlurm: true,
      competition: competitionSpec(ctx, opts.competition),
    });
    const files: LaunchFiles = {
      dir,
      localProgram: plan.kept.path,
      programName: `work/${plan.checked.name}`,
      executable: plan.checked.hasShebang,
      wrapper,
      monitor: templates.monitor,
      onProgress: plan.uploads ? undefined : progressBar(ctx, plan.kept.bytes),
      bundle: bundleOf(ctx, plan, templates),
      grade: gradeFiles(ctx, opts.competition),
    };
    return { kind: 'started', job: await launchOnSlurm(ctx, job, node, transport, files) };
  } catch (e) {
    return { kind: 'failed', error: e as Error };
  }
}

/**
 * Step 4 when no node ran it: records the job as never started (its GPUs free again) and
 * throws why: a user error as it was, anything else as a fault of the node last tried.
 */
export async function recordNeverStarted(ctx: AppContext, job: Job, lastError: Error | null): Promise<never> {
  const why = lastError?.message ?? 'no node could run it';
  await recordVerdict(ctx, job.id, neverStarted(why));
  if (lastError instanceof UserError) throw lastError;
  if (lastError) throw new NodeFaultError(job.node, `job ${job.id} could not start: ${why}`);
  throw new UserError(`job ${job.id} could not start: ${why}`, EXIT.unreachable);
}

/**
 * Submits a job in named steps: plan (no network) → record pending → launch on the first node
 * that answers → record started, or never started (and throw). Resolves once it runs on a node.
 * `hold`, when given, receives the connection to the node it started on, left open for the
 * caller (who must close it).
 */
export async function submit(
  ctx: AppContext,
  opts: SubmitOptions,
  cwd: string,
  hold?: (node: NodeConfig, t: Transport) => void,
): Promise<Job> {
  const plan = await planSubmit(ctx, opts, cwd);
  // Connecting starts now, alongside recording the job (nothing touches a node's files before).
  const reaching = reachInOrder(ctx, plan.nodes, opts.node, plan.limits.gpus, plan.live, opts.priority ?? 0);
  reaching.catch(() => undefined);
  const templates = readTemplates(ctx, false);
  const job = await recordPending(ctx, opts, plan);

  let lastError: Error | null = null;
  let reached: ReachedNode[] = [];
  try {
    reached = await reaching;
  } catch (e) {
    lastError = e as Error;
  }
  try {
    const started = await launchFirst(ctx, opts, plan, job, templates, reached, lastError);
    if (hold) {
      hold(started.on.node, started.on.transport);
      reached = reached.filter((r) => r !== started.on);
    }
    return started.job;
  } finally {
    await Promise.all(reached.map((r) => r.transport.close().catch(() => undefined)));
  }
}

/**
 * Step 3 over the reached nodes in order until one starts the job; when none does, step 4
 * (recorded as never started, and thrown). `lastError` is why no node was reached, if none was.
 */
export async function launchFirst(
  ctx: AppContext,
  opts: SubmitOptions,
  plan: SubmitPlan,
  job: Job,
  templates: Templates,
  reached: ReachedNode[],
  lastError: Error | null,
): Promise<{ job: Job; on: ReachedNode }> {
  let last = lastError;
  for (const [i, r] of reached.entries()) {
    const outcome = await launchOn(ctx, opts, plan, job, templates, r.node, r.transport);
    if (outcome.kind === 'started') return { job: outcome.job, on: r };
    last = outcome.error;
    if (outcome.kind === 'failed') break;
    const next = reached[i + 1];
    if (!next) break;
    ctx.out.info(
      `node ${r.node.name}: ${outcome.error.cause_}; the job did not start there; trying node ${next.node.name}.`,
    );
  }
  return recordNeverStarted(ctx, await findJob(ctx, job.id), last);
}

/**
 * `submit --wait`: starts the job, tells `onStarted`, then waits for its verdict over the same
 * connection (one handshake, not two); with `follow`, streaming its output meanwhile, with
 * `watch`, reporting its progress (services/wait).
 */
export async function submitAndWait(
  ctx: AppContext,
  opts: SubmitOptions,
  cwd: string,
  onStarted: (job: Job) => void,
  how: { follow?: boolean; watch?: WaitWatch } = {},
): Promise<Job> {
  let held: { node: NodeConfig; t: Transport } | null = null;
  const job = await submit(ctx, opts, cwd, (node, t) => {
    held = { node, t };
  });
  const h = held as { node: NodeConfig; t: Transport } | null;
  const link = h ? openNodeLink(ctx, h.node, { initial: h.t }) : undefined;
  try {
    onStarted(job);
    const { waitFollowing, waitJob } = await import('./wait.js');
    if (how.follow) return await waitFollowing(ctx, job, undefined, link);
    return await waitJob(ctx, job, undefined, link, how.watch);
  } finally {
    await link?.close();
  }
}
