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
  /** Raw bytes of a job's output, to stdout or stderr. */
  raw(stream: 'stdout' | 'stderr', chunk: Buffer | string): void;
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
