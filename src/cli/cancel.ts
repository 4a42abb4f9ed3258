/**
 * `gpuq cancel ID…`: stops the jobs' process trees (SIGTERM, then SIGKILL after the grace period).
 */
import type { Command } from 'commander';
import type { CliApp } from './app.js';
import { verdictLine } from './render.js';

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
