/**
 * `gpuq list` (`ls`): the jobs, newest first, as a table or a JSON array.
 */
import type { Command } from 'commander';
import { usageError } from '../core/errors.js';
import { JOB_STATES, VERDICT_CLASSES } from '../core/types.js';
import { parseCount } from '../core/units.js';
import type { CliApp } from './app.js';
import { renderTable } from './render.js';

/** What `--state` takes: a state (running, done…) or a verdict class (failed, timeout…). */
const STATE_WORDS: readonly string[] = [...JOB_STATES, ...VERDICT_CLASSES];

/** Registers `list`/`ls`. */
export function registerList(program: Command, app: CliApp): void {
  program
    .command('list')
    .alias('ls')
    .description('jobs, newest first')
    .option('--state <state>', 'only jobs in this state or with this verdict (running, done, failed, timeout…)')
    .option('--node <name>', 'only jobs on this node')
    .option('--limit <n>', 'at most N jobs (default 20)')
    .option('--all', 'every job, archived ones too')
    .option('--json', 'print a JSON array')
    .action(
      async (f: { state?: string; node?: string; limit?: string; all?: boolean; json?: boolean }, cmd: Command) => {
        const limit = f.limit !== undefined ? parseCount(f.limit, '--limit') : null;
        if (f.state !== undefined && !STATE_WORDS.includes(f.state))
          throw usageError(
            `--state "${f.state}" is neither a state nor a verdict.`,
            `Give one of: ${STATE_WORDS.join(', ')}.`,
          );
        const ctx = app.context(cmd);
        const { listJobs } = await import('../services/list.js');
        const { jobs, more, total } = await listJobs(ctx, {
          all: f.all === true,
          state: f.state ?? null,
          node: f.node ?? null,
          limit,
        });
        if (f.json) {
          const { withFigures } = await import('../core/peaks.js');
          const nowMs = ctx.now().getTime();
          return app.printJson(jobs.map((j) => withFigures(j, nowMs)));
        }
        if (jobs.length === 0) {
          app.io.stderr.write(
            total === 0
              ? `gpuq: no jobs yet; submit one with: gpuq submit FILE\n`
              : `gpuq: no job matches${f.state ? ` --state ${f.state}` : ''}${f.node ? ` --node ${f.node}` : ''}` +
                  ` among ${total} job${total === 1 ? '' : 's'}${f.all ? '' : ' (--all includes archived ones)'}\n`,
          );
          return;
        }
        app.print(renderTable(jobs, ctx.now(), app.style(false)));
        if (more > 0) app.io.stderr.write(`gpuq: ${more} more; see them with --all or --limit N\n`);
      },
    );
}
