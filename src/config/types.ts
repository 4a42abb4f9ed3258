import type { BoundaryMode, Isolation, Limits } from '../core/types.js';

/** A node as config describes it, after validation and defaults. */
export interface NodeConfig {
  name: string;
  transport: 'local' | 'ssh' | 'slurm';
  /**
   * transport "slurm": Slurm queues the job and allocates its GPUs (README, "Slurm"); `host` is
   * the login node's SSH alias, or null where this machine runs sbatch itself.
   */
  slurm?: SlurmNodeConfig;
  /** ssh: host name or ~/.ssh/config alias. */
  host: string | null;
  port: number | null;
  user: string | null;
  identityFile: string | null;
  /** ssh: a jump host, "user@host:port" or an alias (like ProxyJump). */
  jump: string | null;
  /** GPU indices this node offers to gpuq (empty: none). */
  gpus: number[];
  /**
   * A local node without `gpus` in the config: its GPUs are found with nvidia-smi when a command
   * needs them (services/local-gpus.ts), never while loading the config; until then `gpus` is [].
   */
  detectGpus?: boolean;
  /** Set by that detection when it found no GPU: why (nvidia-smi missing, failing, slow, empty). */
  gpusNotFound?: string | null;
  /** Where job folders go; "~/" means the remote user's home. */
  workdir: string;
  /** Interpreter for .py files on the node. */
  python: string;
  /** Trust an unknown host key on first use and record it. */
  acceptNewHostKey: boolean;
  connectTimeoutS: number;
  /**
   * How long past a job's deadline (start + timeout + grace) its supervisor may take to finish
   * before the client counts it as stalled and ends the job itself; null: the built-in margin
   * (30 s, or a tenth of the timeout).
   */
  stallMarginS: number | null;
  /** The trust boundary jobs run behind: "auto" (the best the node gives) or "none" (README, "Trust model"). */
  boundary: BoundaryMode;
  /** Where the node account is root: the unprivileged account programs run as; null for a per-job uid. */
  runAs: string | null;
  /** The node's GPU lock folder, shared by every account that runs gpuq jobs there. */
  lockDir?: string;
  /** Bytes a process outside gpuq may hold on a GPU before that GPU counts as busy. */
  foreignGpuMemoryBytes?: number;
  /** `--isolation docker` on this node (README, "Docker isolation"). */
  docker: {
    /** The docker command as words (default ["docker"]; Podman where its CLI matches). */
    command: string[];
    /** The image when neither --image nor the competition names one. */
    image: string | null;
    /** `--runtime` for the containers (e.g. "nvidia"), or null for the daemon's default. */
    runtime: string | null;
    /** Extra `docker run` flags, each from core/docker-args.ts ALLOWED_EXTRA_FLAGS. */
    extraFlags: string[];
  };
}

/** What a Slurm node adds: where and as whom its jobs are submitted. */
export interface SlurmNodeConfig {
  partition: string | null;
  account: string | null;
  qos: string | null;
  /** Extra sbatch arguments, each from core/slurm's allowed list. */
  sbatchArgs: string[];
  /** sbatch --cpus-per-task (default 1). */
  cpusPerTask: number;
}

export interface CompetitionConfig {
  name: string;
  /** The grader command on the node (argument list), or null: the job is not graded. */
  grader: string[] | null;
  /** Folder on the node given to the program as $GPUQ_DATA, or null. */
  data: string | null;
  /** Folder on the node for the grader only, or null. */
  answers: string | null;
  /** The file the program must write, relative to its working folder (default "submission.csv"). */
  submission: string;
  /** The grader's own limits, in base units (defaults 60 s, 2 GiB, 8 MiB of output). */
  graderLimits: { timeoutS: number; memoryBytes: number; outputBytes: number };
  /** Largest submission file accepted, in bytes (default 100 MiB). */
  maxSubmissionBytes: number;
  /** The metric's name (default "score") and its direction (default higher is better). */
  metric: string;
  higherIsBetter: boolean;
  /** Refuse to run its jobs on a node without a trust boundary (default true). */
  requireBoundary: boolean;
  /** Limits the competition sets, over the config defaults (config strings parsed to base units). */
  limits: Partial<Limits>;
  /** --isolation docker: the run's image, the grader's image, and whether the run gets a network. */
  image?: string | null;
  graderImage?: string | null;
  network?: boolean;
}

/** The whole, validated configuration. */
export interface Config {
  /** File it came from, or null for the embedded default. */
  source: string | null;
  /** Folder for gpuq's own state (ledger, local job folders, known_hosts). */
  stateDir: string;
  ledgerPath: string;
  /** gpuq's own known_hosts file (besides ~/.ssh/known_hosts). */
  knownHostsPath: string;
  /** Limits (built-in ones where the config is silent) and other defaults. */
  defaults: Limits & {
    node: string | null;
    isolation: Isolation;
    image: string | null;
    /** Largest submitted file accepted, in bytes. */
    maxFileBytes: number;
    /** Largest upload (the program and its --include files together), in bytes. */
    maxUploadBytes: number;
    /** Largest file `gpuq get` copies back, and most bytes in all, per call. */
    maxGetFileBytes: number;
    maxGetBytes: number;
  };
  nodes: Record<string, NodeConfig>;
  competitions: Record<string, CompetitionConfig>;
}
