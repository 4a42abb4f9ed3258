/**
 * `gpuq show ID`: one job in full, as text or JSON.
 */
import type { Command } from 'commander';
import type { CliApp } from './app.js';
import { renderJob } from './render.js';

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
