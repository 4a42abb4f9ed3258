/**
 * `gpuq watch ID`: the live view on a terminal (ink, loaded only here and only then), plain
 * timestamped lines or NDJSON otherwise. Exits with the verdict's code once the job is done.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { exitCodeForVerdict } from '../core/exit-codes.js';
import type { Job } from '../core/types.js';
import type { AppContext } from '../services/context.js';
import type { WatchEvent } from '../services/watch.js';
import type { Peaks } from '../tui/model.js';
import type { CliApp } from './app.js';

interface WatchFlags {
  exitOnDone?: boolean;
  json?: boolean;
  plain?: boolean;
}

/** Exit code of SIGINT (Ctrl-C) in the plain mode, as a shell reports it. */
const EXIT_INTERRUPTED = 130;

/** Registers `watch`. */
export function registerWatch(program: Command, app: CliApp): void {
  program
    .command('watch')
    .description('live view of a job (resources, log tail) until its verdict; q leaves it running')
    .argument('<id>', 'job id or unambiguous prefix')
    .option('--exit-on-done', 'leave by itself when the job ends, exiting with its verdict code')
    .option('--plain', 'plain timestamped lines even on a terminal (the default without one)')
    .option('--json', 'print the events as NDJSON, one object a line (no live view)')
    .action(async (id: string, f: WatchFlags, cmd: Command) => {
      const ctx = app.context(cmd);
      const { findJob } = await import('../services/jobs.js');
      const job = await findJob(ctx, id);
      const live = f.json !== true && f.plain !== true && app.io.stdout.isTTY === true && app.io.stdin.isTTY === true;
      const end = live
        ? await watchLive(app, ctx, job, f.exitOnDone === true)
        : await watchPlain(app, ctx, job, f.json === true);
      if (end === 'interrupted') app.exitCode = EXIT_INTERRUPTED;
      else app.exitCode = end?.verdict ? exitCodeForVerdict(end.verdict.class) : 0;
    });
}

/** Without a terminal: lines (or NDJSON) until the verdict; Ctrl-C leaves the job running. */
async function watchPlain(app: CliApp, ctx: AppContext, job: Job, json: boolean): Promise<Job | 'interrupted' | null> {
  const [{ watchJob }, { plainPrinter }] = await Promise.all([
    import('../services/watch.js'),
    import('../tui/plain.js'),
  ]);
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.on('SIGINT', onSigint);
  try {
    const print = plainPrinter(
      { out: (l) => app.io.stdout.write(`${l}\n`), warn: (l) => app.io.stderr.write(`${l}\n`) },
      { json, now: () => ctx.now().getTime() },
    );
    const done = await watchJob(ctx, job.id, { emit: print, signal: ac.signal });
    if (done !== null) return done;
    app.io.stderr.write(`gpuq: left watch; job ${job.id} keeps running (gpuq cancel ${job.id} to stop it)\n`);
    return 'interrupted';
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** On a terminal: the ink view until `q` (or the verdict, with --exit-on-done). */
async function watchLive(app: CliApp, ctx: AppContext, job: Job, exitOnDone: boolean): Promise<Job | null> {
  // React's development build costs several times the CPU per frame; it is read at import.
  process.env.NODE_ENV ??= 'production';
  // ink (through is-in-ci, read at import) draws only the last frame when CI is set; a terminal
  // is in front of a person, so the view must be live even inside a CI job.
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  const [{ watchJob }, { runWatchTui }] = await Promise.all([import('../services/watch.js'), import('../tui/run.js')]);
  const ac = new AbortController();
  let service: Promise<unknown> = Promise.resolve();
  const source = (emit: (e: WatchEvent) => void, end: (error?: unknown) => void): (() => void) => {
    service = watchJob(ctx, job.id, { emit, signal: ac.signal }).then(
      () => end(),
      (e: unknown) => end(e),
    );
    return () => ac.abort();
  };
  const onCancel = async (): Promise<void> => {
    const { cancelJob } = await import('../services/cancel.js');
    await cancelJob(ctx, job.id);
  };
  // `d`: the page `gpuq diagnose` prints; what the verdict alone says if that cannot be had.
  const loadDiagnosis = async (last: Job | null, peaks: Peaks | null): Promise<string> => {
    try {
      const [{ diagnoseJob }, { renderDiagnosis }] = await Promise.all([
        import('../services/diagnose.js'),
        import('./diagnose.js'),
      ]);
      return renderDiagnosis(await diagnoseJob(ctx, job.id), app.style(true));
    } catch (e) {
      const { diagnosisText } = await import('../tui/diagnosis.js');
      return `${diagnosisText(last, peaks)}\n\n(gpuq diagnose failed: ${e instanceof Error ? e.message : String(e)})`;
    }
  };
  try {
    const result = await runWatchTui({
      source,
      onCancel,
      loadDiagnosis,
      exitOnDone,
      stdout: app.io.stdout as NodeJS.WriteStream,
      stdin: app.io.stdin as NodeJS.ReadStream,
      messages: app.io.stderr,
      jobId: job.id,
      color: app.style(false).enabled,
      now: () => ctx.now().getTime(),
    });
    return result.job?.state === 'done' ? result.job : null;
  } finally {
    // Stop following; the job itself keeps running. Give the streams a moment to close.
    ac.abort();
    await Promise.race([service, sleep(2000)]);
  }
}
