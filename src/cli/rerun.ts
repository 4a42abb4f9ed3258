/**
 * `gpuq rerun ID [options]`: flags → overrides (parsed and checked as submit's are, by
 * toSubmitOptions) → services/rerun → services/submit (and wait with --wait).
 */
import { type Command, Option } from 'commander';
import { exitCodeForVerdict } from '../core/exit-codes.js';
import { LIMITS, type LimitSpec } from '../core/limits.js';
import type { RerunOverrides } from '../services/rerun.js';
import type { CliApp } from './app.js';
import { verdictLine } from './render.js';
import { toSubmitOptions } from './submit.js';

type Flags = Parameters<typeof toSubmitOptions>[1];

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

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
    ...(f.image !== undefined && { image: f.image }),
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
    .argument('<id>', 'the job to run again (an id or a prefix)')
    .option('--node <name>', "run on this node (default: the job's --node, else gpuq chooses)")
    .option('--name <text>', "a name for the new job (default: the job's)")
    .option('--competition <name>', "a competition from the config (default: the job's)");
  for (const spec of LIMITS as readonly LimitSpec[])
    cmd.option(`${spec.flag} <${spec.placeholder}>`, `${spec.help} (default: the job's)`);
  cmd
    .addOption(new Option('--isolation <kind>', 'ulimit or docker').hideHelp())
    .addOption(new Option('--image <name>', 'docker image (with --isolation docker)').hideHelp())
    .option('--priority <n>', "place in the node's GPU queue, -1000 to 1000 (default: the job's)")
    .option('--env <KEY=VALUE>', "set a variable, over the job's (repeatable)", collect)
    .option('--arg <value>', "pass an argument instead of the job's (repeatable)", collect)
    .option(
      '--include <path>',
      'upload a file or folder next to the program (repeatable; not kept from the job)',
      collect,
    )
    .option('--wait', 'wait for the verdict; exit with its code (see gpuq --help for the codes)')
    .option('--json', 'print the new job as JSON')
    .option('-q, --quiet', 'print the new id alone')
    .addHelpText(
      'after',
      '\nThe program is the copy gpuq kept when the job was submitted, not the file as it is now.\n' +
        'Limits are the ones the job ran under; each option given replaces that one setting\n' +
        '(--env a variable, --arg all the arguments).',
    )
    .action(async (id: string, flags: Flags, command: Command) => {
      const over = toRerunOverrides(flags);
      const ctx = app.context(command);
      const { planRerun } = await import('../services/rerun.js');
      const { old, opts } = await planRerun(ctx, id, over);
      const { submit, submitAndWait } = await import('../services/submit.js');
      const said = (newId: string) => {
        if (!flags.quiet && !flags.json) app.io.stderr.write(`gpuq: ${newId} is a rerun of ${old.id}\n`);
      };
      if (flags.wait) {
        const done = await submitAndWait(ctx, opts, app.io.cwd, (job) => {
          if (flags.json) return;
          app.print(job.id);
          said(job.id);
          if (!flags.quiet)
            app.io.stderr.write(
              `gpuq: ${job.state === 'queued' ? 'queued' : 'started'} ${job.id} on ${job.node}; waiting for it to end\n`,
            );
        });
        if (flags.json) {
          const { withFigures } = await import('../core/peaks.js');
          app.printJson(withFigures(done, ctx.now().getTime()));
        } else if (!flags.quiet) app.print(verdictLine(done, app.style(false)));
        app.exitCode = done.verdict ? exitCodeForVerdict(done.verdict.class) : 0;
        return;
      }
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
