/**
 * Renders templates/wrapper.sh (the node-side supervisor) for one job. Pure: the template
 * text comes in, the script comes out; every value is quoted by renderTemplate.
 */
import { LIMITS, type LimitSpec, type WrapperForm } from '../core/limits.js';
import { DEFAULT_FOREIGN_MIB, DEFAULT_LOCK_DIR } from '../core/queue.js';
import { renderTemplate } from '../core/template.js';
import type { BoundaryMode, Limits } from '../core/types.js';

export interface WrapperSpec {
  jobId: string;
  /** The command line run in the job's work/ folder, e.g. ["python3", "solution.py", "--x"]. */
  command: string[];
  env: Record<string, string>;
  limits: Limits;
  /** The job's share of the node's cores, as a fraction, for OMP_NUM_THREADS and friends. */
  cpuShare: { num: number; den: number };
  /** CUDA_VISIBLE_DEVICES for the job, or null to leave it as the node has it. */
  cudaDevices: string | null;
  useCgroups: boolean;
  /** Where the node's cgroup hierarchies are mounted; /sys/fs/cgroup unless a test says otherwise. */
  cgroupRoot?: string;
  /** The node's trust boundary setting: "auto" (the best the node gives, the default) or "none". */
  boundary?: BoundaryMode;
  /** As root on the node: the account the program runs as; null for a per-job uid (the default). */
  runAs?: string | null;
  /** Refuse to start the program where no boundary can be had (a competition that requires one). */
  requireBoundary?: boolean;
  /** Folders the program must not see, e.g. the local node's gpuq state folder (ledger, known_hosts). */
  hideDirs?: string[];
  /** On a Slurm node: GPUs come from Slurm's allocation, not from a lease (README, "Slurm"). */
  fromSlurm?: boolean;
  /** The GPU queue (templates/README.md): absent or `need` 0 for a job that takes no GPU lease. */
  queue?: QueueSpec;
  /**
   * The job's competition (issue 13): the data folder ($GPUQ_DATA), the answers folder (hidden
   * from the program), and templates/grade.py's arguments (core/grading gradeArgs; empty: no grading).
   */
  competition?: { data: string | null; answers: string | null; grade: string[] };
  /** `--isolation docker`: the container to run the command in (absent: the host, behind the boundary). */
  docker?: DockerSpec;
}

/** What the supervisor needs to run the job in a container (src/core/docker-args.ts builds `options`). */
export interface DockerSpec {
  /** The docker command on the node, as words: ["docker"], ["podman"], ["docker", "--host", "unix:///…"]. */
  command: string[];
  image: string;
  /** `docker run`'s options, with the NODE_TOKENS the supervisor fills in. */
  options: string[];
  /** The container's name (core/docker-args.ts containerName). */
  container: string;
  /** Keep the container after the job (`--keep-container`), for a post-mortem. */
  keep: boolean;
}

/** What the supervisor needs to wait for and lease GPUs on its node. */
export interface QueueSpec {
  nodeName: string;
  /** GPUs the job needs; the node picks which. */
  need: number;
  /** The node's GPU indices to choose from. */
  nodeGpus: number[];
  /** The lock folder every account on the node shares. */
  lockDir: string;
  priority: number;
  /** user@host of the submitter, for display. */
  submitter: string;
  /** A process outside gpuq holding more than this (MiB) on a GPU makes it busy; negative: never. */
  foreignMiB: number;
}

/** Produces the bash supervisor for a job from the template text. */
export function renderWrapper(template: string, spec: WrapperSpec): string {
  return renderTemplate(template, {
    JOB_ID: spec.jobId,
    COMMAND: spec.command,
    ENV: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    ...limitVars(spec.limits),
    SHARE_NUM: Math.max(1, Math.round(spec.cpuShare.num)),
    SHARE_DEN: Math.max(1, Math.round(spec.cpuShare.den)),
    CUDA_DEVICES: spec.cudaDevices ?? '-',
    USE_CGROUPS: spec.useCgroups ? 1 : 0,
    CGROUP_ROOT: spec.cgroupRoot ?? '/sys/fs/cgroup',
    BOUNDARY_MODE: spec.boundary ?? 'auto',
    RUN_AS: spec.runAs ?? '',
    REQUIRE_BOUNDARY: spec.requireBoundary ? 1 : 0,
    HIDE_DIRS: spec.hideDirs ?? [],
    NODE_NAME: spec.queue?.nodeName ?? '',
    NEED_GPUS: spec.queue?.need ?? 0,
    NODE_GPUS: (spec.queue?.nodeGpus ?? []).map(String),
    LOCK_DIR: spec.queue?.lockDir ?? DEFAULT_LOCK_DIR,
    PRIORITY: spec.queue?.priority ?? 0,
    SUBMITTER: spec.queue?.submitter ?? '',
    FOREIGN_MIB: spec.queue?.foreignMiB ?? DEFAULT_FOREIGN_MIB,
    DATA_DIR: spec.competition?.data ?? '',
    ANSWERS_DIR: spec.competition?.answers ?? '',
    GRADE: spec.competition?.grade ?? [],
    FROM_SLURM: spec.fromSlurm ? 1 : 0,
    ...dockerVars(spec.docker),
  });
}

/** The template variables of Docker isolation; the host's (`ulimit`) when there is no container. */
function dockerVars(d: DockerSpec | undefined): Record<string, string | number | string[]> {
  return {
    ISOLATION: d ? 'docker' : 'ulimit',
    DOCKER: d?.command ?? ['docker'],
    DOCKER_IMAGE: d?.image ?? '',
    DOCKER_OPTS: d?.options ?? [],
    CONTAINER: d?.container ?? '',
    KEEP_CONTAINER: d?.keep ? 1 : 0,
  };
}

/** The command line for a submitted file: Python and shell by extension, else its #! line. */
export function commandFor(programName: string, python: string, hasShebang: boolean, args: string[]): string[] | null {
  const prog = programName.startsWith('-') ? `./${programName}` : programName;
  if (/\.py$/i.test(programName)) return [python, prog, ...args];
  if (/\.(sh|bash)$/i.test(programName)) return ['bash', prog, ...args];
  if (hasShebang) return [`./${programName}`, ...args];
  return null;
}

/** The template variables of the limits, one per row of LIMITS that has one; null (unlimited) is 0. */
function limitVars(limits: Limits): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const row of LIMITS as readonly LimitSpec[]) {
    if (row.wrapper === null) continue;
    const v = limits[row.key as keyof Limits];
    out[row.wrapper.variable] = v === null ? 0 : wrapperValue(v, row.wrapper.form);
  }
  return out;
}

function wrapperValue(v: number, form: WrapperForm): string | number {
  // `sleep` takes fractions; keep three decimals and no exponent.
  if (form === 'seconds') return String(Math.round(v * 1000) / 1000);
  // `ulimit -t` takes whole seconds, and 0 would mean unlimited.
  if (form === 'wholeSeconds') return Math.max(1, Math.ceil(v));
  return v;
}
