/**
 * `gpuq logs ID`: a job's stdout to stdout and its stderr to stderr, optionally following.
 */
import type { Command } from 'commander';
import { usageError } from '../core/errors.js';
import { parseCount } from '../core/units.js';
import type { CliApp } from './app.js';

/** Exit code after Ctrl-C of `logs -f`, as a shell reports SIGINT. */
const EXIT_INTERRUPTED = 130;

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
        if (f.follow !== true) {
          await showLogs(ctx, id, { follow: false, tail, streams });
          return;
        }
        // Ctrl-C ends the follow on the node too (its process groups, its channels): without this
        // the default action killed gpuq alone, and the node's tail and watchers lingered until
        // they noticed, seconds later (longer on a loaded node). A second Ctrl-C kills at once.
        const ac = new AbortController();
        const onSigint = (): void => ac.abort();
        process.once('SIGINT', onSigint);
        try {
          await showLogs(ctx, id, { follow: true, tail, streams }, ac.signal);
        } finally {
          process.off('SIGINT', onSigint);
        }
        if (ac.signal.aborted) app.exitCode = EXIT_INTERRUPTED;
      },
    );
}
