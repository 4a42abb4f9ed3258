/**
 * The state of `gpuq watch` and the pure reducer that folds watch events and UI actions into it.
 * Everything the view draws is derived from this state, so it is tested without a terminal.
 */
import type { Job, Sample } from '../core/types.js';
import type { LogEvent, LogStream, WatchEvent } from './events.js';
import { sanitizeLine } from './format.js';

export type LogFilter = 'all' | 'stdout' | 'stderr';

/** The order `s` cycles through. */
export const LOG_FILTERS: readonly LogFilter[] = ['all', 'stdout', 'stderr'];

/** One buffered log line; `seq` counts every line received, so it is a stable key. */
export interface LogLine {
  seq: number;
  stream: LogStream;
  /** Sanitised: no escapes, no control characters, only the last carriage-return segment. */
  text: string;
  at: number;
}

/** The highest values seen in any sample since the view started. */
export interface Peaks {
  rssBytes: number;
  cpuPct: number;
  procs: number;
  threads: number;
  openFiles: number;
  folderBytes: number;
  /** Sum over the job's GPUs of the job's memory (or the GPU's, where per-process use is unknown). */
  gpuMemBytes: number | null;
}

export type ConnectionState =
  | { status: 'connecting' }
  | { status: 'connected' }
  | { status: 'reconnecting'; retryInS: number; reason: string; at: number | null }
  | { status: 'ended'; error: string | null };

/** idle → confirm (asked) → sending (onCancel running) → sent | failed. */
export type CancelState = 'idle' | 'confirm' | 'sending' | 'sent' | 'failed';

export interface DiagnosisState {
  open: boolean;
  status: 'idle' | 'loading' | 'ready' | 'error';
  text: string | null;
  error: string | null;
  /** First shown line of the wrapped text. */
  scroll: number;
}

export interface UiState {
  filter: LogFilter;
  /** Log lines hidden below the window (0 = following the tail). */
  scroll: number;
  cancel: CancelState;
  /** A one-line message for the status line (e.g. why a key did nothing). */
  notice: string | null;
  diagnosis: DiagnosisState;
}

export interface WatchOptions {
  /** Samples kept for sparklines. */
  historySize: number;
  /** Log lines kept; the oldest are dropped beyond it. */
  logLimit: number;
}

export interface WatchState {
  job: Job | null;
  /** The last `historySize` samples, oldest first. */
  samples: Sample[];
  peaks: Peaks | null;
  logs: LogLine[];
  /** Lines received so far (the next line's seq). */
  received: number;
  /** Lines dropped from the front of the buffer. */
  dropped: number;
  connection: ConnectionState;
  /** The samples show the job's processes gone while its verdict is not in yet. */
  ending: boolean;
  ui: UiState;
  options: WatchOptions;
}

/** What the keys (and the view's async work) do to the state. */
export type UiAction =
  | { type: 'filter/cycle' }
  | { type: 'filter/set'; filter: LogFilter }
  | { type: 'scroll'; by: number; viewport: number }
  | { type: 'cancel/ask' }
  | { type: 'cancel/dismiss' }
  | { type: 'cancel/confirm' }
  | { type: 'cancel/sent' }
  | { type: 'cancel/failed'; message: string }
  | { type: 'diagnosis/open' }
  | { type: 'diagnosis/close' }
  | { type: 'diagnosis/loaded'; text: string }
  | { type: 'diagnosis/failed'; message: string }
  | { type: 'diagnosis/scroll'; by: number; max: number }
  | { type: 'notice'; text: string | null }
  | { type: 'source/end'; error: string | null };

export type WatchAction = WatchEvent | UiAction | { type: 'batch'; actions: WatchAction[] };

export const DEFAULT_HISTORY = 60;
export const DEFAULT_LOG_LIMIT = 5000;

/** The state before any event: no job, nothing sampled, connecting. */
export function initialWatchState(opts: Partial<WatchOptions> & { job?: Job | null } = {}): WatchState {
  return {
    job: opts.job ?? null,
    samples: [],
    peaks: null,
    logs: [],
    received: 0,
    dropped: 0,
    connection: { status: 'connecting' },
    ending: false,
    ui: {
      filter: 'all',
      scroll: 0,
      cancel: 'idle',
      notice: null,
      diagnosis: { open: false, status: 'idle', text: null, error: null, scroll: 0 },
    },
    options: {
      historySize: Math.max(1, opts.historySize ?? DEFAULT_HISTORY),
      logLimit: Math.max(1, opts.logLimit ?? DEFAULT_LOG_LIMIT),
    },
  };
}

/** Whether the job has its verdict (the view shows the banner, `d` works, `c` does not). */
export function isDone(job: Job | null): job is Job & { verdict: NonNullable<Job['verdict']> } {
  return job !== null && job.state === 'done' && job.verdict !== null;
}

/** Whether a log line passes the filter. */
export function matchesFilter(stream: LogStream, filter: LogFilter): boolean {
  return filter === 'all' || filter === stream;
}

/** The buffered lines the current filter shows, oldest first. */
export function filteredLogs(state: WatchState): LogLine[] {
  const f = state.ui.filter;
  return f === 'all' ? state.logs : state.logs.filter((l) => l.stream === f);
}

/** What a log window of `viewport` rows shows: the lines, and how many are hidden above and below. */
export interface LogWindow {
  lines: LogLine[];
  total: number;
  above: number;
  below: number;
}

/** The slice of the filtered log a window of `viewport` rows shows at the current scroll offset. */
export function logWindow(state: WatchState, viewport: number): LogWindow {
  const all = filteredLogs(state);
  const rows = Math.max(0, Math.floor(viewport));
  const below = clamp(state.ui.scroll, 0, Math.max(0, all.length - rows));
  const end = all.length - below;
  const start = Math.max(0, end - rows);
  return { lines: all.slice(start, end), total: all.length, above: start, below };
}

/** Reduces one watch event or UI action into a new state; never mutates its input. */
export function reduceWatch(state: WatchState, action: WatchAction): WatchState {
  switch (action.type) {
    case 'batch':
      return reduceBatch(state, action.actions);
    case 'job':
    case 'verdict':
      return withJob(state, action.job);
    case 'sample':
      return withSample(state, action.sample);
    case 'log':
      return appendLogs(state, [action]);
    case 'connection':
      return {
        ...state,
        connection:
          action.status === 'connected'
            ? { status: 'connected' }
            : {
                status: 'reconnecting',
                retryInS: Math.max(0, action.retryInS),
                reason: action.reason,
                at: action.at ?? null,
              },
      };
    case 'source/end':
      return { ...state, connection: { status: 'ended', error: action.error } };
    default:
      return { ...state, ui: reduceUi(state, action) };
  }
}

function reduceUi(state: WatchState, action: UiAction): UiState {
  const ui = state.ui;
  switch (action.type) {
    case 'filter/cycle': {
      const i = LOG_FILTERS.indexOf(ui.filter);
      return { ...ui, filter: LOG_FILTERS[(i + 1) % LOG_FILTERS.length] as LogFilter, scroll: 0, notice: null };
    }
    case 'filter/set':
      return { ...ui, filter: action.filter, scroll: 0, notice: null };
    case 'scroll': {
      const total = filteredLogs(state).length;
      const max = Math.max(0, total - Math.max(0, Math.floor(action.viewport)));
      // Start from the offset the window actually shows, so a stale one does not swallow keys.
      const from = clamp(ui.scroll, 0, max);
      return { ...ui, scroll: clamp(from + action.by, 0, max), notice: null };
    }
    case 'cancel/ask':
      if (state.job === null) return { ...ui, notice: 'the job is not known yet; try again in a moment' };
      if (isDone(state.job)) return { ...ui, notice: `job ${state.job.id} is already done` };
      if (ui.cancel === 'sending' || ui.cancel === 'sent') return { ...ui, notice: 'cancel already sent' };
      return { ...ui, cancel: 'confirm', notice: null };
    case 'cancel/dismiss':
      return ui.cancel === 'confirm' ? { ...ui, cancel: 'idle', notice: null } : ui;
    case 'cancel/confirm':
      return ui.cancel === 'confirm' ? { ...ui, cancel: 'sending', notice: 'cancelling…' } : ui;
    case 'cancel/sent':
      return { ...ui, cancel: 'sent', notice: isDone(state.job) ? null : 'cancel sent; waiting for the job to stop' };
    case 'cancel/failed':
      return { ...ui, cancel: 'failed', notice: `cancel failed: ${action.message}` };
    case 'diagnosis/open': {
      if (!isDone(state.job)) return { ...ui, notice: 'the diagnosis is ready once the job is done' };
      const d = ui.diagnosis;
      const status = d.status === 'ready' || d.status === 'loading' ? d.status : 'loading';
      return { ...ui, notice: null, diagnosis: { ...d, open: true, status, scroll: 0 } };
    }
    case 'diagnosis/close':
      return { ...ui, diagnosis: { ...ui.diagnosis, open: false } };
    case 'diagnosis/loaded':
      return { ...ui, diagnosis: { ...ui.diagnosis, status: 'ready', text: action.text, error: null } };
    case 'diagnosis/failed':
      return { ...ui, diagnosis: { ...ui.diagnosis, status: 'error', text: null, error: action.message } };
    case 'diagnosis/scroll': {
      const d = ui.diagnosis;
      return { ...ui, diagnosis: { ...d, scroll: clamp(d.scroll + action.by, 0, Math.max(0, action.max)) } };
    }
    case 'notice':
      return { ...ui, notice: action.text };
    case 'source/end':
      return ui;
  }
}

function reduceBatch(state: WatchState, actions: readonly WatchAction[]): WatchState {
  let s = state;
  let run: LogEvent[] = [];
  for (const a of actions) {
    if (a.type === 'log') {
      run.push(a);
      continue;
    }
    if (run.length > 0) {
      s = appendLogs(s, run);
      run = [];
    }
    s = reduceWatch(s, a);
  }
  return run.length > 0 ? appendLogs(s, run) : s;
}

function withJob(state: WatchState, job: Job): WatchState {
  // A late ledger event must not take a finished job back to running.
  if (isDone(state.job) && !isDone(job) && state.job.id === job.id) return state;
  if (!isDone(job)) return { ...state, job };
  const cancel: CancelState = state.ui.cancel === 'confirm' ? 'idle' : state.ui.cancel;
  // "cancelling…" and "waiting for the job to stop" are over once the verdict is in.
  const notice = state.ui.cancel === 'sending' || state.ui.cancel === 'sent' ? null : state.ui.notice;
  return { ...state, job, ui: { ...state.ui, cancel, notice } };
}

function withSample(state: WatchState, sample: Sample): WatchState {
  const last = state.samples[state.samples.length - 1];
  // Reconnects replay the tail of samples.jsonl: keep time moving forward only.
  if (last !== undefined && sample.t <= last.t) return state;
  // Once the job's processes are gone, keep showing their last figures, not zeros; the
  // supervisor is collecting the verdict.
  if (last !== undefined && last.procs > 0 && sample.procs === 0)
    return state.ending ? state : { ...state, ending: true };
  const samples = [...state.samples, sample].slice(-state.options.historySize);
  return { ...state, samples, peaks: mergePeaks(state.peaks, sample) };
}

/** The GPU memory a sample attributes to the job, summed over its GPUs (null without GPU data). */
export function gpuMemOf(sample: Sample): number | null {
  if (!sample.gpu || sample.gpu.length === 0) return null;
  return sample.gpu.reduce((sum, g) => sum + (g.jobMemBytes ?? g.memUsedBytes), 0);
}

function mergePeaks(p: Peaks | null, s: Sample): Peaks {
  const gpu = gpuMemOf(s);
  if (p === null) {
    return {
      rssBytes: s.rssBytes,
      cpuPct: s.cpuPct,
      procs: s.procs,
      threads: s.threads,
      openFiles: s.openFiles,
      folderBytes: s.folderBytes,
      gpuMemBytes: gpu,
    };
  }
  return {
    rssBytes: Math.max(p.rssBytes, s.rssBytes),
    cpuPct: Math.max(p.cpuPct, s.cpuPct),
    procs: Math.max(p.procs, s.procs),
    threads: Math.max(p.threads, s.threads),
    openFiles: Math.max(p.openFiles, s.openFiles),
    folderBytes: Math.max(p.folderBytes, s.folderBytes),
    gpuMemBytes: gpu === null ? p.gpuMemBytes : Math.max(p.gpuMemBytes ?? 0, gpu),
  };
}

function appendLogs(state: WatchState, events: readonly LogEvent[]): WatchState {
  if (events.length === 0) return state;
  const limit = state.options.logLimit;
  let seq = state.received;
  const added: LogLine[] = events.map((e) => ({ seq: seq++, stream: e.stream, text: sanitizeLine(e.line), at: e.at }));
  let logs = state.logs.concat(added);
  let dropped = state.dropped;
  if (logs.length > limit) {
    dropped += logs.length - limit;
    logs = logs.slice(logs.length - limit);
  }
  let ui = state.ui;
  if (ui.scroll > 0) {
    // Scrolled back: keep the same lines in view while new ones arrive below.
    const shown = added.filter((l) => matchesFilter(l.stream, ui.filter)).length;
    const inBuffer = ui.filter === 'all' ? logs.length : logs.filter((l) => l.stream === ui.filter).length;
    ui = { ...ui, scroll: Math.min(ui.scroll + shown, Math.max(0, inBuffer - 1)) };
  }
  return { ...state, logs, received: seq, dropped, ui };
}

function clamp(n: number, lo: number, hi: number): number {
  if (Number.isNaN(n)) return lo;
  return Math.min(hi, Math.max(lo, n));
}
