/**
 * `gpuq logs ID`: a job's stdout to stdout and its stderr to stderr, optionally following.
 */
import type { Command } from 'commander';
import { usageError } from '../core/errors.js';
import { parseCount } from '../core/units.js';
import type { CliApp } from './app.js';

/** Registers `logs`. */
export function registerLogs(program: Command, app: CliApp): void {
  program
    .command('logs')
    .description("a job's stdout (to stdout) and stderr (to stderr)")
    .argument('<id>', 'job id or unambiguous prefix')
    .option('-f, --follow', 'keep printing until the job ends')
    .option('--tail <n>', 'only the last N lines')
    .option('--stdout', 'only stdout')
    .option('--stderr', 'only stderr')
    .action(
      async (id: string, f: { follow?: boolean; tail?: string; stdout?: boolean; stderr?: boolean }, cmd: Command) => {
        const tail = f.tail !== undefined ? parseCount(f.tail, '--tail') : null;
        if (f.stdout && f.stderr)
          throw usageError('--stdout and --stderr together are the default; give one or neither.');
        const streams: ('stdout' | 'stderr')[] = f.stdout ? ['stdout'] : f.stderr ? ['stderr'] : ['stdout', 'stderr'];
        const ctx = app.context(cmd);
        const { showLogs } = await import('../services/logs.js');
        await showLogs(ctx, id, { follow: f.follow === true, tail, streams });
      },
    );
}
