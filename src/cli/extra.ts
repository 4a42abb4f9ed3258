/**
 * Commands beyond the foundation's, each in its own module.
 */
import type { Command } from 'commander';
import type { CliApp } from './app.js';
import { registerDiagnose } from './diagnose.js';
import { registerNodes } from './nodes.js';
import { registerWatch } from './watch.js';

/** Registers diagnose, watch and nodes. */
export function registerExtra(program: Command, app: CliApp): void {
  registerDiagnose(program, app);
  registerWatch(program, app);
  registerNodes(program, app);
}
