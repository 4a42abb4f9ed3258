import type { Isolation } from '../core/types.js';

/** A node as config describes it, after validation and defaults. */
export interface NodeConfig {
  name: string;
  transport: 'local' | 'ssh';
  /** ssh: host name or ~/.ssh/config alias. */
  host: string | null;
  port: number | null;
  user: string | null;
  identityFile: string | null;
  /** ssh: a jump host, "user@host:port" or an alias (like ProxyJump). */
  jump: string | null;
  /** GPU indices this node offers to gpuq (empty: none). */
  gpus: number[];
  /** Where job folders go; "~/" means the remote user's home. */
  workdir: string;
  /** Interpreter for .py files on the node. */
  python: string;
  /** Trust an unknown host key on first use and record it. */
  acceptNewHostKey: boolean;
  connectTimeoutS: number;
  docker: { image: string | null; runtime: string | null; extraArgs: string[] };
}

/** Limit defaults as strings in config ("30m", "2g") are parsed into these. */
export interface LimitDefaults {
  timeoutS: number;
  graceS: number;
  memoryBytes: number | null;
  pids: number | null;
  files: number | null;
  fileSizeBytes: number | null;
  cpuTimeS: number | null;
  gpus: number;
}

export interface CompetitionConfig {
  name: string;
  grader: string | null;
  dataDir: string | null;
  limits: Partial<LimitDefaults>;
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
  defaults: LimitDefaults & {
    node: string | null;
    isolation: Isolation;
    image: string | null;
    /** Largest submitted file accepted, in bytes. */
    maxFileBytes: number;
  };
  nodes: Record<string, NodeConfig>;
  competitions: Record<string, CompetitionConfig>;
}
