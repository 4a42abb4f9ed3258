/**
 * `gpuq diagnose`: registered here; the service does the work.
 */
import type { Command } from 'commander';
import type { CliApp } from './app.js';

/** Registers `diagnose` (not implemented yet). */
export function registerDiagnose(_program: Command, _app: CliApp): void {}
