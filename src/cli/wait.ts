/**
 * `gpuq wait ID…`: blocks until the jobs end and exits with the worst verdict's code.
 */
import type { Command } from 'commander';
import { exitCodeForVerdict, worstExitCode } from '../core/exit-codes.js';
import type { CliApp } from './app.js';
import { verdictLine } from './render.js';

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
      if (f.json) {
        const { withFigures } = await import('../core/peaks.js');
        const nowMs = ctx.now().getTime();
        app.printJson(jobs.map((j) => withFigures(j, nowMs)));
      }
      app.exitCode = worstExitCode(jobs.map((j) => (j.verdict ? exitCodeForVerdict(j.verdict.class) : 0)));
    });
}
