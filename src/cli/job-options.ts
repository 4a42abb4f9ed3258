/**
 * The options `submit` and `rerun` share, registered once: the same flags, parsers and help,
 * told apart only by where a value comes from when it is not given (submit: the built-in default
 * or the config; rerun: the job being run again). And the one way both wait: `--wait` and
 * `--follow` (services/submit.submitAndWait), with the status line on a terminal.
 */
import type { Command } from 'commander';
import { exitCodeForVerdict } from '../core/exit-codes.js';
import { formatDuration, formatSizeOption } from '../core/format.js';
import { LIMITS, type LimitSpec } from '../core/limits.js';
import type { Job } from '../core/types.js';
import type { AppContext } from '../services/context.js';
import type { SubmitOptions } from '../services/submit.js';
import type { CliApp } from './app.js';
import { verdictLine } from './render.js';
import { startStatusLine, wantsStatusLine, withStatusLine } from './status-line.js';

/** Which command the options are for: what an absent option means differs. */
export type JobOptionsFor = 'submit' | 'rerun';

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

/** A limit's built-in default as the option takes it ("1h", "512m", "1024", "none"). */
function builtinText(spec: LimitSpec): string {
  if (spec.builtin === null) return 'none';
  if (spec.kind === 'duration') return formatDuration(spec.builtin);
  if (spec.kind === 'size') return formatSizeOption(spec.builtin);
  return String(spec.builtin);
}

/** Adds the shared options to `cmd`, in the order `--help` lists them. */
export function addJobOptions(cmd: Command, forCmd: JobOptionsFor): Command {
  const rerun = forCmd === 'rerun';
  const was = (submitDefault: string) => (rerun ? " (default: the job's)" : submitDefault);
  cmd
    .option('--node <name>', `run on this node${rerun ? " (default: the job's --node, else gpuq chooses)" : ''}`)
    .option('--name <text>', `a name for the ${rerun ? 'new ' : ''}job${was(' (default: the file name)')}`)
    .option('--competition <name>', `a competition from the config${was('')}`);
  for (const spec of LIMITS as readonly LimitSpec[])
    cmd.option(`${spec.flag} <${spec.placeholder}>`, `${spec.help}${was(` (built-in default: ${builtinText(spec)})`)}`);
  return cmd
    .option(
      '--isolation <kind>',
      `ulimit (the host, behind its trust boundary) or docker (a container of its own)${was('')}`,
    )
    .option('--image <name>', `the container image (with --isolation docker)${was('')}`)
    .option('--keep-container', 'keep the container after the job, for a post-mortem (with --isolation docker)')
    .option(
      '--priority <n>',
      `place in the node's GPU queue: higher runs first (-1000 to 1000, default ${rerun ? "the job's" : '0'})`,
    )
    .option('--env <KEY=VALUE>', `set a variable for the job (repeatable${rerun ? "; over the job's" : ''})`, collect)
    .option(
      '--arg <value>',
      `pass an argument to the program (repeatable${rerun ? "; replaces the job's arguments" : ''})`,
      collect,
    )
    .option(
      '--include <path>',
      'upload this file or folder too, next to the program under its own name (repeatable; links refused' +
        `${rerun ? '; not kept from the job' : ''})`,
      collect,
    )
    .option('--wait', 'wait for the verdict; exit with its code (see gpuq --help for the codes)')
    .option('--follow', "with --wait (implied): stream the program's stdout and stderr, then the verdict on stderr")
    .option('--json', `print the ${rerun ? 'new ' : ''}job as JSON`)
    .option('-q, --quiet', `print the ${rerun ? 'new ' : ''}id alone`);
}

/**
 * `--wait` / `--follow` of submit and rerun: starts the job, tells `onStarted`, waits for its
 * verdict (with --follow streaming its output, the id and verdict on stderr), prints it and sets
 * the exit code from it.
 */
export async function submitWaitingFor(
  app: CliApp,
  ctx: AppContext,
  opts: SubmitOptions,
  flags: { follow?: boolean; json?: boolean; quiet?: boolean },
  onStarted: (job: Job) => void = () => undefined,
): Promise<void> {
  const { submitAndWait } = await import('../services/submit.js');
  // --follow: stdout holds the program's output alone; the id and the verdict go to stderr.
  const line = wantsStatusLine(app.io, flags) ? startStatusLine(app.io, () => ctx.now().getTime()) : null;
  const done = await submitAndWait(
    line ? withStatusLine(ctx, line) : ctx,
    opts,
    app.io.cwd,
    (job) => {
      if (flags.json) return;
      if (!flags.follow) app.print(job.id);
      onStarted(job);
      if (!flags.quiet)
        app.io.stderr.write(
          `gpuq: ${job.state === 'queued' ? 'queued' : 'started'} ${job.id} on ${job.node}; waiting for it to end\n`,
        );
    },
    { follow: flags.follow, watch: line?.watch },
  ).finally(() => line?.stop());
  if (flags.json) {
    const { withFigures } = await import('../core/peaks.js');
    app.printJson(withFigures(done, ctx.now().getTime()));
  } else if (flags.follow) {
    if (!flags.quiet) app.io.stderr.write(`${verdictLine(done, app.errStyle())}\n`);
  } else if (!flags.quiet) app.print(verdictLine(done, app.style(false)));
  app.exitCode = done.verdict ? exitCodeForVerdict(done.verdict.class) : 0;
}
