/**
 * `gpuq rerun ID [options]`: submit's options (cli/job-options) → overrides (parsed and checked as
 * submit's are, by toSubmitOptions) → services/rerun → services/submit (and wait with --wait or
 * --follow, as submit does).
 */
import type { Command } from 'commander';
import type { RerunOverrides } from '../services/rerun.js';
import type { CliApp } from './app.js';
import { addJobOptions, submitWaitingFor } from './job-options.js';
import { toSubmitOptions } from './submit.js';
import { checkFollow } from './wait.js';

type Flags = Parameters<typeof toSubmitOptions>[1];

/** The overrides a rerun was given: submit's parsing of the flags, keeping only those present. */
export function toRerunOverrides(f: Flags): RerunOverrides {
  const o = toSubmitOptions('', f);
  return {
    limits: o.limits,
    env: o.env,
    ...(f.node !== undefined && { node: f.node }),
    ...(f.name !== undefined && { name: f.name }),
    ...(f.competition !== undefined && { competition: f.competition }),
    ...(o.isolation !== null && { isolation: o.isolation }),
    ...(o.image !== null && { image: o.image }),
    ...(o.keepContainer && { keepContainer: true }),
    ...(f.arg !== undefined && { args: o.args }),
    ...(f.priority !== undefined && { priority: o.priority }),
    ...(f.include !== undefined && { include: f.include }),
  };
}

/** Registers `rerun`. */
export function registerRerun(program: Command, app: CliApp): void {
  const cmd = program
    .command('rerun')
    .description('run a job again as a new job: the program as it was submitted, with the same options')
    .argument('<id>', 'the job to run again (an id or a prefix)');
  addJobOptions(cmd, 'rerun')
    .addHelpText(
      'after',
      '\nThe program is the copy gpuq kept when the job was submitted, not the file as it is now.\n' +
        'Limits are the ones the job ran under; each option given replaces that one setting\n' +
        '(--env a variable, --arg all the arguments).',
    )
    .action(async (id: string, flags: Flags, command: Command) => {
      checkFollow(flags, 1);
      const over = toRerunOverrides(flags);
      const ctx = app.context(command);
      const { planRerun } = await import('../services/rerun.js');
      const { old, opts } = await planRerun(ctx, id, over);
      const said = (newId: string) => {
        if (!flags.quiet && !flags.json) app.io.stderr.write(`gpuq: ${newId} is a rerun of ${old.id}\n`);
      };
      if (flags.wait || flags.follow) return submitWaitingFor(app, ctx, opts, flags, (job) => said(job.id));
      const { submit } = await import('../services/submit.js');
      const job = await submit(ctx, opts, app.io.cwd);
      if (flags.json) return app.printJson(job);
      app.print(job.id);
      said(job.id);
      if (!flags.quiet)
        app.io.stderr.write(
          job.state === 'queued'
            ? `gpuq: queued on ${job.node}; see where it stands with: gpuq show ${job.id}\n`
            : `gpuq: started on ${job.node}; follow it with: gpuq logs -f ${job.id}\n`,
        );
    });
}
