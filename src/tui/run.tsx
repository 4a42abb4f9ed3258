/**
 * Mounts the live `gpuq watch` view on a terminal and resolves when the user leaves or the job is
 * done. The CLI imports this module lazily, only for `watch` on a TTY, so ink and react are never
 * loaded by other commands.
 */
import { render } from 'ink';
import type { Job } from '../core/types.js';
import { diagnosisText } from './diagnosis.js';
import type { WatchEvent, WatchResult } from './events.js';
import type { Peaks } from './model.js';
import { WatchView, type Subscribe } from './WatchView.js';

/**
 * Where the events come from: call `emit` per event and `end()` when the stream is over, or
 * `end(error)` when it failed; the returned function is called once on leaving.
 */
export type WatchSource = (emit: (e: WatchEvent) => void, end: (error?: unknown) => void) => () => void;

export interface RunWatchOptions {
  source: WatchSource;
  /** Sends the cancel; called only after the user answers 'y' to "cancel job ID? y/n". */
  onCancel: () => Promise<void>;
  /**
   * The full diagnosis as plain text (ANSI escapes are dropped), loaded on the first `d`;
   * default: from the verdict.
   */
  loadDiagnosis?: (job: Job | null, peaks: Peaks | null) => Promise<string>;
  /** Unmount by itself once the verdict arrives (`--exit-on-done`). */
  exitOnDone: boolean;
  /** Default process.stdout / process.stdin. */
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  /** Where the leaving line goes (default process.stderr). */
  messages?: NodeJS.WritableStream;
  /** The job id, for the leaving line when no job event arrived yet. */
  jobId?: string;
  /** Default: on unless NO_COLOR is set (non-empty). */
  color?: boolean;
  /** The clock (ms since the epoch); default Date.now. */
  now?: () => number;
}

/** Turns the source into the view's subscribe function, which ends the sink once at most. */
function toSubscribe(source: WatchSource): Subscribe {
  return (sink) => {
    let ended = false;
    return source(sink.event, (error?: unknown) => {
      if (ended) return;
      ended = true;
      sink.end(error);
    });
  };
}

/** The line printed after leaving a job that is still running. */
export function leavingLine(result: WatchResult, fallbackId?: string): string | null {
  if (result.job?.state === 'done') return null;
  const id = result.job?.id ?? fallbackId;
  if (id === undefined) return 'left watch; the job keeps running';
  if (result.cancelRequested) return `left watch; cancel of job ${id} requested (gpuq show ${id} for the verdict)`;
  return `left watch; job ${id} keeps running (gpuq watch ${id} to come back, gpuq cancel ${id} to stop it)`;
}

/**
 * Shows the live view until the user leaves (`q`, Ctrl-C) or, with exitOnDone, the verdict
 * arrives; prints the leaving line for a job still running. Rejects with the source's error
 * when the event stream fails.
 */
export async function runWatchTui(opts: RunWatchOptions): Promise<WatchResult> {
  const stdout = opts.stdout ?? process.stdout;
  const stdin = opts.stdin ?? process.stdin;
  const color = opts.color ?? !(process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '');
  const inner = toSubscribe(opts.source);
  // Remember the latest job here too, for a leave that bypasses the view (SIGINT).
  let last: WatchResult = { left: 'quit', job: null, cancelRequested: false };
  const subscribe: Subscribe = (sink) =>
    inner({
      event: (e) => {
        if (e.type === 'job' || e.type === 'verdict') last = { ...last, job: e.job };
        sink.event(e);
      },
      end: sink.end,
    });
  const instance = render(
    <WatchView
      subscribe={subscribe}
      onCancel={opts.onCancel}
      loadDiagnosis={opts.loadDiagnosis ?? ((job, peaks) => Promise.resolve(diagnosisText(job, peaks)))}
      exitOnDone={opts.exitOnDone}
      color={color}
      {...(opts.now ? { now: opts.now } : {})}
      onExit={(r) => {
        last = r;
      }}
    />,
    // Not ink's incrementalRendering: in tmux it left stale rows behind after a redraw.
    { stdout, stdin, exitOnCtrlC: false, patchConsole: false, maxFps: 10 },
  );

  // In raw mode Ctrl-C arrives as a key; a SIGINT from elsewhere leaves the same way.
  const onSigint = (): void => instance.unmount();
  process.on('SIGINT', onSigint);
  try {
    const value: unknown = await instance.waitUntilExit();
    const result = isResult(value) ? value : last;
    const line = result.left === 'quit' ? leavingLine(result, opts.jobId) : null;
    if (line !== null) (opts.messages ?? process.stderr).write(`${line}\n`);
    return result;
  } finally {
    process.off('SIGINT', onSigint);
    instance.cleanup();
  }
}

function isResult(v: unknown): v is WatchResult {
  return typeof v === 'object' && v !== null && 'left' in v && 'job' in v;
}
