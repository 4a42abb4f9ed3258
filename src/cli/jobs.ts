/**
 * The read and control commands: list, show, logs, wait, cancel. Each parses flags and
 * calls one service.
 */
import type { Command } from 'commander';
import { usageError } from '../core/errors.js';
import { exitCodeForVerdict, worstExitCode } from '../core/exit-codes.js';
import { parseCount } from '../core/units.js';
import type { CliApp } from './app.js';
import { renderJob, renderTable, verdictLine } from './render.js';

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
        const ctx = app.context(cmd);
        const { listJobs } = await import('../services/list.js');
        const { jobs, more } = await listJobs(ctx, {
          all: f.all === true,
          state: f.state ?? null,
          node: f.node ?? null,
          limit,
        });
        if (f.json) return app.printJson(jobs);
        if (jobs.length === 0) {
          app.io.stderr.write('gpuq: no jobs yet; submit one with: gpuq submit FILE\n');
          return;
        }
        app.print(renderTable(jobs, ctx.now(), app.style(false)));
        if (more > 0) app.io.stderr.write(`gpuq: ${more} more; see them with --all or --limit N\n`);
      },
    );
}

/** Registers `show`. */
export function registerShow(program: Command, app: CliApp): void {
  program
    .command('show')
    .description('one job in full')
    .argument('<id>', 'job id or unambiguous prefix')
    .option('--json', 'print the job as JSON')
    .action(async (id: string, f: { json?: boolean }, cmd: Command) => {
      const ctx = app.context(cmd);
      const { showJob } = await import('../services/list.js');
      const job = await showJob(ctx, id);
      if (f.json) app.printJson(job);
      else app.print(renderJob(job, ctx.now(), app.style(false)));
    });
}

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

/** Registers `wait`. */
export function registerWait(program: Command, app: CliApp): void {
  program
    .command('wait')
    .description('block until the jobs end; exit with the worst verdict code')
    .argument('<ids...>', 'job ids or prefixes')
    .option('--json', 'print the jobs as a JSON array')
    .action(async (ids: string[], f: { json?: boolean }, cmd: Command) => {
      const ctx = app.context(cmd);
      const { waitJobs } = await import('../services/wait.js');
      const style = app.style(f.json === true);
      const jobs = await waitJobs(ctx, ids, (j) => {
        if (!f.json) app.print(verdictLine(j, style));
      });
      if (f.json) app.printJson(jobs);
      app.exitCode = worstExitCode(jobs.map((j) => (j.verdict ? exitCodeForVerdict(j.verdict.class) : 0)));
    });
}

/** Registers `cancel`. */
export function registerCancel(program: Command, app: CliApp): void {
  program
    .command('cancel')
    .description("SIGTERM to the job's process tree, SIGKILL after the grace period")
    .argument('<ids...>', 'job ids or prefixes')
    .option('--json', 'print the jobs as a JSON array')
    .action(async (ids: string[], f: { json?: boolean }, cmd: Command) => {
      const ctx = app.context(cmd);
      const { cancelJob } = await import('../services/cancel.js');
      const outcomes = await Promise.all(ids.map((id) => cancelJob(ctx, id)));
      if (f.json) return app.printJson(outcomes.map((o) => o.job));
      for (const o of outcomes) {
        if (o.cancelled) app.print(`${o.job.id} cancelled`);
        else app.print(`${o.job.id} had already ended: ${verdictLine(o.job, app.style(false))}`);
      }
    });
}
