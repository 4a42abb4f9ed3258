/**
 * Commands added by later features (diagnose, watch, nodes, results) register here.
 */
import type { Command } from 'commander';
import type { CliApp } from './app.js';

/** Registers the commands beyond the foundation's. */
export function registerExtra(_program: Command, _app: CliApp): void {}
