/**
 * The `docker run` of a job's container (`--isolation docker`), as data. Pure: the options come
 * in, the argument list comes out, and the supervisor (templates/wrapper.sh, `start_container`)
 * runs it. What only the node knows when the container starts (the job folder, the node
 * account's uid and gid, its cores, the leased GPUs) is a token here (NODE_TOKENS), which the
 * supervisor replaces literally, element by element, before the run. Two roles: `run` (the
 * submitted program, in the job's work folder, the data read-only) and `grade` (the grader, in
 * a fresh container: submission and answers read-only, the feedback folder writable).
 */
import { usageError } from './errors.js';

/** Where the folders appear inside a container. */
export const CONTAINER_PATHS = {
  work: '/gpuq/work',
  data: '/gpuq/data',
  submission: '/gpuq/submission',
  answers: '/gpuq/answers',
  feedback: '/gpuq/feedback',
} as const;

/** Values the supervisor fills in on the node (literal replacement in each argument). */
export const NODE_TOKENS = {
  /** The job's work folder on the node (absolute). */
  work: '@GPUQ_WORK@',
  /** The node account's home, for a competition folder the config gives as "~/…". */
  home: '@GPUQ_HOME@',
  /** The node account's uid and gid: the container's user. */
  uid: '@GPUQ_UID@',
  gid: '@GPUQ_GID@',
  /** The job's share of the node's cores, as `--cpus` takes it ("1.5"). */
  cpus: '@GPUQ_CPUS@',
  /** The thread pools' default (OMP_NUM_THREADS and friends). */
  threads: '@GPUQ_THREADS@',
  /** The GPU indices the node leased, "0,2". */
  gpus: '@GPUQ_GPUS@',
  /** The grading's folder, gradings/N (absolute; grade.py fills it in, N is only known there). */
  grading: '@GPUQ_GRADING@',
} as const;

export type ContainerRole = 'run' | 'grade';

/** Host folders a container mounts, by role (host paths may hold NODE_TOKENS). */
export type ContainerMounts =
  | { role: 'run'; work: string; data: string | null }
  | { role: 'grade'; submission: string; answers: string | null; feedback: string };

export interface ContainerSpec {
  mounts: ContainerMounts;
  jobId: string;
  /** user@host of the submitter, for the label. */
  submitter: string;
  image: string;
  /** Whether the container gets a network (a competition's `network`; default none). */
  network: boolean;
  /** Limits in base units; null is unlimited. */
  memoryBytes: number | null;
  pids: number | null;
  files: number | null;
  fileSizeBytes: number | null;
  cpuTimeS: number | null;
  graceS: number;
  /** GPUs the job needs (0: no `--gpus`). */
  gpus: number;
  /** `--env` values, applied after gpuq's defaults (thread counts) and before its own variables. */
  env: Record<string, string>;
  /** Extra flags from the node's config, each one of ALLOWED_EXTRA_FLAGS (checked by checkExtraFlag). */
  extraFlags: readonly string[];
  /** The program's command line inside the container. */
  command: readonly string[];
}

/** The container's name for a job and role: `gpuq-ID` for the run, `gpuq-ID-grade` for its grading. */
export function containerName(jobId: string, role: ContainerRole): string {
  return role === 'run' ? `gpuq-${jobId}` : `gpuq-${jobId}-grade`;
}

/**
 * The extra flags a node may add, and only these: none of them opens a door the container
 * closes (no mounts, devices, capabilities, privileges, namespaces of the host).
 */
export const ALLOWED_EXTRA_FLAGS: readonly { flag: string; value: RegExp; why: string }[] = [
  { flag: '--shm-size', value: /^[0-9]+(\.[0-9]+)?[bkmg]?$/i, why: 'a larger /dev/shm (PyTorch DataLoader workers)' },
  { flag: '--runtime', value: /^[a-z][a-z0-9._-]{0,63}$/i, why: 'an OCI runtime such as nvidia' },
  { flag: '--ulimit', value: /^(memlock|stack)=-?[0-9]+(:-?[0-9]+)?$/, why: 'the memlock or stack rlimit' },
  { flag: '--platform', value: /^[a-z0-9._/-]{1,64}$/, why: 'the image platform' },
  { flag: '--hostname', value: /^[a-z0-9][a-z0-9.-]{0,62}$/i, why: 'the container host name' },
];

/** Null when `flag` ("--name=value") is allowed, else why not (for the config's error message). */
export function checkExtraFlag(flag: string): string | null {
  const eq = flag.indexOf('=');
  const name = eq < 0 ? flag : flag.slice(0, eq);
  const spec = ALLOWED_EXTRA_FLAGS.find((a) => a.flag === name);
  const allowed = ALLOWED_EXTRA_FLAGS.map((a) => a.flag).join(', ');
  if (!spec) return `"${flag}" is not one of the allowed flags (${allowed}), written as --flag=value`;
  if (eq < 0 || !spec.value.test(flag.slice(eq + 1))) return `"${flag}" has a value ${name} does not take here`;
  return null;
}

// A Docker image reference: [registry[:port]/]path[:tag][@digest], as `docker` parses it. A first
// part is a registry only with a dot, a port, or as localhost; otherwise it is a lowercase path.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const REGISTRY = `(?:(?:localhost|${HOST}(?:\\.${HOST})+)(?::[0-9]+)?|${HOST}:[0-9]+)`;
const IMAGE_RE = new RegExp(
  `^(?:${REGISTRY}/)?${COMPONENT}(?:/${COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`,
);

/** Whether `name` is a well-formed image reference (it never starts with "-"). */
export function isImageName(name: string): boolean {
  return name.length <= 255 && IMAGE_RE.test(name);
}

/** Refuses a malformed image name with the usage error (exit 2) that names `what` (e.g. "--image"). */
export function checkImageName(name: string, what: string): string {
  if (!isImageName(name))
    throw usageError(
      `${what}: "${name}" is not a Docker image name.`,
      'Give a name like python:3.12-slim or registry.example.org/team/image:tag.',
    );
  return name;
}

/** A `--mount` value, each field CSV-quoted where it holds a comma or a quote. */
function mount(source: string, target: string, readOnly: boolean): string {
  const field = (f: string) => (/[",]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f);
  return ['type=bind', field(`source=${source}`), field(`target=${target}`), ...(readOnly ? ['readonly'] : [])].join(
    ',',
  );
}

/**
 * The options of `docker run` for one container, in order; the image and the command follow
 * them (dockerRunArgs). Each flag and why is in the README ("Docker isolation").
 */
export function dockerRunOptions(spec: ContainerSpec): string[] {
  const role = spec.mounts.role;
  const o: string[] = [
    `--name=${containerName(spec.jobId, role)}`,
    `--label=gpuq.job=${spec.jobId}`,
    `--label=gpuq.role=${role}`,
    `--label=gpuq.submitter=${spec.submitter}`,
    // Output reaches the job's log files through the attached client; Docker keeps no copy.
    '--log-driver=none',
  ];
  if (!spec.network) o.push('--network=none');
  o.push('--read-only', '--tmpfs=/tmp:rw,nosuid,nodev,exec,mode=1777');
  const m = spec.mounts;
  if (m.role === 'run') {
    o.push(`--mount=${mount(m.work, CONTAINER_PATHS.work, false)}`, `--workdir=${CONTAINER_PATHS.work}`);
    if (m.data !== null) o.push(`--mount=${mount(m.data, CONTAINER_PATHS.data, true)}`);
  } else {
    o.push(
      `--mount=${mount(m.submission, CONTAINER_PATHS.submission, true)}`,
      ...(m.answers === null ? [] : [`--mount=${mount(m.answers, CONTAINER_PATHS.answers, true)}`]),
      `--mount=${mount(m.feedback, CONTAINER_PATHS.feedback, false)}`,
      `--workdir=${CONTAINER_PATHS.feedback}`,
    );
  }
  if (spec.memoryBytes !== null) o.push(`--memory=${spec.memoryBytes}`, `--memory-swap=${spec.memoryBytes}`);
  if (spec.pids !== null) o.push(`--pids-limit=${spec.pids}`);
  o.push(`--cpus=${NODE_TOKENS.cpus}`);
  if (spec.files !== null) o.push(`--ulimit=nofile=${spec.files}:${spec.files}`);
  if (spec.fileSizeBytes !== null) o.push(`--ulimit=fsize=${spec.fileSizeBytes}:${spec.fileSizeBytes}`);
  if (spec.cpuTimeS !== null) {
    const s = Math.max(1, Math.ceil(spec.cpuTimeS));
    o.push(`--ulimit=cpu=${s}:${s}`);
  }
  o.push(
    '--ulimit=core=0:0',
    '--cap-drop=ALL',
    '--security-opt=no-new-privileges',
    `--user=${NODE_TOKENS.uid}:${NODE_TOKENS.gid}`,
    '--init',
    '--ipc=private',
    `--stop-timeout=${Math.max(1, Math.ceil(spec.graceS))}`,
  );
  if (spec.gpus > 0) o.push(`--gpus="device=${NODE_TOKENS.gpus}"`, '--env=CUDA_DEVICE_ORDER=PCI_BUS_ID');
  o.push(...spec.extraFlags);
  // The environment: the base and the thread pools, then --env, then gpuq's own (nobody overrides them).
  const home = m.role === 'run' ? CONTAINER_PATHS.work : CONTAINER_PATHS.feedback;
  const env: [string, string][] = [
    ['HOME', home],
    ['LANG', 'C.UTF-8'],
    ['LC_ALL', 'C.UTF-8'],
    ['OMP_NUM_THREADS', NODE_TOKENS.threads],
    ['MKL_NUM_THREADS', NODE_TOKENS.threads],
    ['OPENBLAS_NUM_THREADS', NODE_TOKENS.threads],
    ['NUMEXPR_NUM_THREADS', NODE_TOKENS.threads],
    ...Object.entries(spec.env),
    ['GPUQ_JOB_ID', spec.jobId],
    ['PYTHONUNBUFFERED', '1'],
    ['TMPDIR', '/tmp'],
  ];
  if (m.role === 'run' && m.data !== null) env.push(['GPUQ_DATA', CONTAINER_PATHS.data]);
  for (const [k, v] of env) o.push(`--env=${k}=${v}`);
  return o;
}

/** The whole `docker run` argument list after the docker command: options, `--`-free image, command. */
export function dockerRunArgs(spec: ContainerSpec): string[] {
  return ['run', ...dockerRunOptions(spec), spec.image, ...spec.command];
}

/** What the grader's container needs (`--isolation docker`; templates/grade.py's `--docker`). */
export interface GraderContainer {
  jobId: string;
  submitter: string;
  /** The competition's graderImage, else its image, else the job's. */
  image: string;
  /** The competition's answers folder on the node ("~/" is the node account's home), or null. */
  answers: string | null;
  /** graderLimits.memory: the container's --memory (swap equal). */
  memoryBytes: number;
  /** The job's pids limit, the grader's too (null: none). */
  pids: number | null;
  /** The node's docker command (["docker"]) and its extra flags (runtime included). */
  docker: readonly string[];
  extraFlags: readonly string[];
  /** --keep-container: the grader's container is kept too. */
  keep: boolean;
}

/**
 * grade.py's `--docker JSON` argument for a job under Docker: the grader then runs in a fresh
 * container of its own (role `grade`: the submission and answers read-only, the feedback folder
 * writable, no network, the run's lock-down flags), which grade.py starts, stops on its timeout,
 * inspects (OOMKilled) and removes. The options keep NODE_TOKENS, which grade.py fills in on
 * the node (the grading folder among them); `--pull=never`: a missing image is an error, not a pull.
 */
export function graderDockerArgs(g: GraderContainer): string[] {
  const answers = g.answers?.startsWith('~/') ? `${NODE_TOKENS.home}/${g.answers.slice(2)}` : g.answers;
  const options = dockerRunOptions({
    mounts: {
      role: 'grade',
      submission: `${NODE_TOKENS.grading}/submission`,
      answers: answers || null,
      feedback: `${NODE_TOKENS.grading}/feedback`,
    },
    jobId: g.jobId,
    submitter: g.submitter,
    image: g.image,
    network: false,
    memoryBytes: Math.floor(g.memoryBytes),
    pids: g.pids,
    files: null,
    fileSizeBytes: null,
    cpuTimeS: null,
    graceS: 2,
    gpus: 0,
    env: {},
    extraFlags: g.extraFlags,
    command: [],
  });
  const spec = {
    command: g.docker,
    image: g.image,
    name: containerName(g.jobId, 'grade'),
    keep: g.keep,
    options: ['--pull=never', ...options],
  };
  return ['--docker', JSON.stringify(spec)];
}
