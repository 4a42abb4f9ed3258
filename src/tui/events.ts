/**
 * The events the live view consumes: the watch service's stream (re-exported from there, so this
 * module stays free of I/O) and how a watch ended.
 */
import type { Job } from '../core/types.js';

export type {
  ConnectionEvent,
  JobEvent,
  LogEvent,
  LogStream,
  SampleEvent,
  VerdictEvent,
  WatchEvent,
} from '../services/watch.js';

/** How a watch ended: the user left (`quit`) or the verdict came with exit-on-done (`done`). */
export interface WatchResult {
  left: 'quit' | 'done';
  /** The last job seen, or null when none arrived. */
  job: Job | null;
  /** Whether the user confirmed a cancel during the watch. */
  cancelRequested: boolean;
}
