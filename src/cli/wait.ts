/**
 * `gpuq wait ID…`: blocks until the jobs end and exits with the worst verdict's code. On a
 * terminal, a status line on stderr says where the jobs stand; `--follow` (one job) streams the
 * program's output instead and prints the verdict on stderr.
 */
import type { Command } from 'commander';
import { usageError } from '../core/errors.js';
import { exitCodeForVerdict, worstExitCode } from '../core/exit-codes.js';
import type { CliApp } from './app.js';
import { verdictLine } from './render.js';
import { startStatusLine, wantsStatusLine, withStatusLine } from './status-line.js';

interface WaitFlags {
  json?: boolean;
  follow?: boolean;
}

/** Refuses --follow with --json (both want stdout) or with several jobs (their outputs would mix). */
export function checkFollow(f: { follow?: boolean; json?: boolean }, jobs: number): void {
  if (!f.follow) return;
  if (f.json)
    throw usageError(
      "--follow prints the program's output on stdout and --json a JSON document there; give one of them.",
      'Follow the output with --follow, then read the job with: gpuq show ID --json',
    );
  if (jobs > 1)
    throw usageError(
      '--follow streams the output of one job; several jobs would mix their lines.',
      'Follow one job (gpuq wait --follow ID), or follow each with: gpuq logs -f ID',
    );
}

/** Registers `wait`. */
export function registerWait(program: Command, app: CliApp): void {
  program
    .command('wait')
    .description('block until the jobs end; exit with the worst verdict code')
    .argument('<ids...>', 'job ids or prefixes')
    .option('-f, --follow', "stream the job's stdout and stderr meanwhile, then the verdict on stderr (one job)")
    .option('--json', 'print the jobs as a JSON array')
    .action(async (ids: string[], f: WaitFlags, cmd: Command) => {
      checkFollow(f, ids.length);
      const ctx = app.context(cmd);
      const { waitFollowing, waitJobs } = await import('../services/wait.js');
      if (f.follow) {
        const { findJob } = await import('../services/jobs.js');
        const done = await waitFollowing(ctx, await findJob(ctx, ids[0] as string));
        app.io.stderr.write(`${verdictLine(done, app.errStyle())}\n`);
        app.exitCode = done.verdict ? exitCodeForVerdict(done.verdict.class) : 0;
        return;
      }
      const style = app.style(f.json === true);
      const line = wantsStatusLine(app.io, f) ? startStatusLine(app.io, () => ctx.now().getTime()) : null;
      const jobs = await (async () => {
        try {
          return await waitJobs(
            line ? withStatusLine(ctx, line) : ctx,
            ids,
            (j) => {
              if (f.json) return;
              if (line) line.ended(j, () => app.print(verdictLine(j, style)));
              else app.print(verdictLine(j, style));
            },
            undefined,
            line?.watch,
          );
        } finally {
          line?.stop();
        }
      })();
      if (f.json) {
        const { withFigures } = await import('../core/peaks.js');
        const nowMs = ctx.now().getTime();
        app.printJson(jobs.map((j) => withFigures(j, nowMs)));
      }
      app.exitCode = worstExitCode(jobs.map((j) => (j.verdict ? exitCodeForVerdict(j.verdict.class) : 0)));
    });
}
