/**
 * `gpuq watch`: registered here; the service does the work.
 */
import type { Command } from 'commander';
import type { CliApp } from './app.js';

/** Registers `watch` (not implemented yet). */
export function registerWatch(_program: Command, _app: CliApp): void {}
