/**
 * The events the watch service feeds to the live view (and to the plain / NDJSON printers).
 * Plain data only: the service produces them, the view reduces them (model.ts).
 */
import type { Job, Sample } from '../core/types.js';

/** Which of the job's two output files a log line came from. */
export type LogStream = 'stdout' | 'stderr';

/** The job as the ledger has it now: sent first, then on any ledger or state change. */
export interface JobEvent {
  type: 'job';
  job: Job;
}

/** One resource snapshot (a line of samples.jsonl). */
export interface SampleEvent {
  type: 'sample';
  sample: Sample;
}

/** One line of the job's stdout or stderr, without its newline; `at` is ms since the epoch. */
export interface LogEvent {
  type: 'log';
  stream: LogStream;
  line: string;
  at: number;
}

/**
 * The state of the streaming connection to the node. `reconnecting` says when the next try is
 * due (`retryInS` from `at`); `at` (ms since the epoch) is optional: the view stamps the event
 * with its own clock when it arrives without one.
 */
export type ConnectionEvent =
  | { type: 'connection'; status: 'connected' }
  | { type: 'connection'; status: 'reconnecting'; retryInS: number; reason: string; at?: number };

/** The job is over: `job.verdict` is set and `job.state` is 'done'. */
export interface VerdictEvent {
  type: 'verdict';
  job: Job;
}

/** Everything `gpuq watch` shows, as one stream. */
export type WatchEvent = JobEvent | SampleEvent | LogEvent | ConnectionEvent | VerdictEvent;

/** How a watch ended: the user left (`quit`) or the verdict came with exit-on-done (`done`). */
export interface WatchResult {
  left: 'quit' | 'done';
  /** The last job seen, or null when none arrived. */
  job: Job | null;
  /** Whether the user confirmed a cancel during the watch. */
  cancelRequested: boolean;
}
