/**
 * `gpuq nodes`: registered here; the service does the work.
 */
import type { Command } from 'commander';
import type { CliApp } from './app.js';

/** Registers `nodes` (not implemented yet). */
export function registerNodes(_program: Command, _app: CliApp): void {}
