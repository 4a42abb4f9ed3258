/**
 * The status line of `wait` and `submit --wait` on a terminal: one line on stderr, rewritten in
 * place (`\r`, clear line) as the wait learns more and once a second for the elapsed time, and
 * cleared before anything else prints. Only where stderr is a terminal: scripts and CI see none.
 */
import type { Job } from '../core/types.js';
import type { AppContext } from '../services/context.js';
import type { WaitProgress, WaitWatch } from '../services/wait.js';
import { fitLine, type WaitSnapshot, waitStatusLine } from '../core/wait-status.js';
import type { Io } from './app.js';

/** How often the wait looks at the node for the status line (its own probe, made more often). */
export const STATUS_EVERY_S = 5;
const REDRAW_MS = 1000;
const CLEAR = '\r\u001b[2K';

export interface StatusLine {
  /** What the wait hands its progress to. */
  watch: WaitWatch;
  /** Clears the line, runs `print` (which writes to stdout or stderr), then draws it again. */
  around(print: () => void): void;
  /** A job ended: clears the line, runs `print` (its verdict), and draws it again while others wait. */
  ended(job: Job, print: () => void): void;
  /** Shows `text` (a step before there are jobs to report: "starting 100 jobs on gpu1…"); null hides it again. */
  say(text: string | null): void;
  /** Clears the line for good and stops its clock. */
  stop(): void;
}

/**
 * Whether `wait` / `submit --wait` show the status line: stderr is a terminal (not a dumb one),
 * and neither --follow nor -q was given (--json keeps it: the JSON goes alone to stdout).
 */
export function wantsStatusLine(io: Io, f: { follow?: boolean; quiet?: boolean }): boolean {
  return io.stderr.isTTY === true && io.env.TERM !== 'dumb' && !f.follow && !f.quiet;
}

/** Starts the status line on stderr (nothing is drawn until the first progress). */
export function startStatusLine(io: Io, now: () => number): StatusLine {
  const snaps = new Map<string, WaitSnapshot>();
  let shown = '';
  let paused = false;
  let said: string | null = null;
  const draw = () => {
    if (paused || (said === null && [...snaps.values()].every((x) => x.job.state === 'done'))) return;
    const text = fitLine(said ?? waitStatusLine([...snaps.values()], now()), io.stderr.columns ?? null);
    if (text === shown) return;
    io.stderr.write(`${CLEAR}${text}`);
    shown = text;
  };
  const clear = () => {
    if (shown === '') return;
    io.stderr.write(CLEAR);
    shown = '';
  };
  const clock = setInterval(draw, REDRAW_MS);
  clock.unref();
  return {
    watch: {
      everyS: STATUS_EVERY_S,
      onProgress: (p: WaitProgress) => {
        snaps.set(p.job.id, { job: p.job, sample: p.sample, queue: p.queue });
        draw();
      },
    },
    around(print) {
      clear();
      print();
      draw();
    },
    ended(job, print) {
      const was = snaps.get(job.id);
      snaps.set(job.id, { job, sample: was?.sample ?? null, queue: null });
      clear();
      print();
      draw();
    },
    say(text) {
      said = text;
      if (text === null) clear();
      draw();
    },
    stop() {
      clearInterval(clock);
      paused = true;
      clear();
    },
  };
}

/** The context with its notes on stderr (a reconnect, a warning) printed around the status line. */
export function withStatusLine(ctx: AppContext, line: StatusLine): AppContext {
  return { ...ctx, out: { ...ctx.out, info: (t) => line.around(() => ctx.out.info(t)) } };
}
