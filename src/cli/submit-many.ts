/**
 * `gpuq submit a.py b.py …`: several files, one job each (services/submit.submitMany); the ids
 * one per line, and with --wait every verdict and the worst exit code, as `wait` gives.
 */
import { UserError, usageError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { exitCodeForVerdict, worstExitCode } from '../core/exit-codes.js';
import type { Job } from '../core/types.js';
import type { AppContext } from '../services/context.js';
import type { SubmitOptions } from '../services/submit.js';
import type { CliApp } from './app.js';
import { verdictLine } from './render.js';
import { startStatusLine, wantsStatusLine, withStatusLine } from './status-line.js';

/** Submits each of `list` as its own job and prints as `submit` does, one job per line. */
export async function submitFiles(
  app: CliApp,
  ctx: AppContext,
  list: SubmitOptions[],
  flags: { wait?: boolean; json?: boolean; quiet?: boolean; name?: string },
): Promise<void> {
  if (flags.name !== undefined)
    throw usageError('--name names one job; with several files each job is named after its file.');
  const { submitMany, waitMany } = await import('../services/submit-many.js');
  // On a terminal: one line on stderr while the jobs start, then while they are waited for.
  const line = wantsStatusLine(app.io, flags) ? startStatusLine(app.io, () => ctx.now().getTime()) : null;
  const lineCtx = line ? withStatusLine(ctx, line) : ctx;
  const { results, links } = await submitMany(lineCtx, list, app.io.cwd, {
    onStarting: (count, node) => line?.say(`starting ${count} job${count === 1 ? '' : 's'} on ${node}…`),
  }).finally(() => line?.say(null));
  try {
    const started = results.filter((r): r is Job => !(r instanceof Error));
    const errors = results.filter((r): r is Error => r instanceof Error);
    for (const [i, r] of results.entries())
      if (r instanceof Error) app.io.stderr.write(`gpuq: ${list[i]?.file}: ${r.message}\n`);
    if (!flags.json) for (const j of started) app.print(j.id);
    if (!flags.quiet && !flags.json)
      app.io.stderr.write(
        `gpuq: ${started.length} of ${results.length} jobs started` +
          `${flags.wait ? '; waiting for them to end' : '; see them with: gpuq list'}\n`,
      );
    const errorCode = worstExitCode(errors.map((e) => (e instanceof UserError ? e.exitCode : EXIT.bug)));
    if (!flags.wait) {
      if (flags.json) app.printJson(started);
      app.exitCode = errorCode;
      return;
    }
    const style = app.style(flags.json === true);
    const done = await waitMany(
      lineCtx,
      started,
      links,
      (j) => {
        if (flags.json || flags.quiet) return;
        if (line) line.ended(j, () => app.print(verdictLine(j, style)));
        else app.print(verdictLine(j, style));
      },
      line?.watch,
    );
    if (flags.json) {
      const { withFigures } = await import('../core/peaks.js');
      const nowMs = ctx.now().getTime();
      app.printJson(done.map((j) => withFigures(j, nowMs)));
    }
    app.exitCode = worstExitCode([
      errorCode,
      ...done.map((j) => (j.verdict ? exitCodeForVerdict(j.verdict.class) : 0)),
    ]);
  } finally {
    line?.stop();
    await Promise.all(links.map((l) => l.close()));
  }
}
