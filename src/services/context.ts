/**
 * What every service needs: the config, the ledger, a way to reach nodes, output sinks and
 * the clock. Built once by the CLI entry; services never see commander.
 */
import type { Config, NodeConfig } from '../config/types.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Transport } from '../transport/transport.js';

export interface Output {
  /** A result line on stdout. */
  result(text: string): void;
  /** Progress, warnings and notes on stderr. */
  info(text: string): void;
  /**
   * Raw bytes of a job's output, to stdout or stderr. A returned promise settles once the chunk is
   * handed to the OS: a streaming caller waits on it, so a slow reader cannot grow gpuq's memory.
   */
  raw(stream: 'stdout' | 'stderr', chunk: Buffer | string): void | Promise<void>;
  /** Whether stderr is a terminal (progress bars only go there). */
  stderrIsTTY: boolean;
}

export interface AppContext {
  config: Config;
  ledger: Ledger;
  out: Output;
  now(): Date;
  /** Opens the transport for a node (SSH or local). Rejects with NodeUnreachableError. */
  connect(node: NodeConfig): Promise<Transport>;
  /** Folder holding templates/ (the package root). */
  packageRoot: string;
}
