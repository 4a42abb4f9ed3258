/**
 * Verdicts gpuq gives without a probe to classify: a job that never reached its node, one
 * cancelled before it started. Pure; the services record them, `classify` covers the rest.
 */
import { formatDuration } from './format.js';
import type { Verdict } from './types.js';

/** A submit that found no node to start the job on: `lost`, cause `not_started`, with why. */
export function neverStarted(why: string): Verdict {
  return {
    class: 'lost',
    cause: 'not_started',
    exitCode: null,
    signal: null,
    timedOut: false,
    summary: `Never started: ${why}`,
    evidence: [why],
    hints: ['Check the node with `gpuq nodes`, then submit again.'],
  };
}

/** A job whose submit stopped (killed, crashed) before it recorded a job folder. */
export function submitStopped(): Verdict {
  return {
    class: 'lost',
    cause: 'not_started',
    exitCode: null,
    signal: null,
    timedOut: false,
    summary: 'The job never reached its node: its submit stopped before starting it.',
    evidence: ['no job folder was recorded for it'],
    hints: ['Submit the file again.'],
  };
}

/** `gpuq cancel` of a job that had not reached its node yet. */
export function cancelledBeforeStart(): Verdict {
  return {
    class: 'cancelled',
    cause: null,
    exitCode: null,
    signal: null,
    timedOut: false,
    summary: 'Cancelled before it started.',
    evidence: ['gpuq cancel before the job reached its node'],
    hints: [],
  };
}

/** `gpuq cancel` of a job waiting in its node's GPU queue: removed from the queue, never ran. */
export function cancelledWhileQueued(node: string): Verdict {
  return {
    class: 'cancelled',
    cause: null,
    exitCode: null,
    signal: null,
    timedOut: false,
    summary: 'Cancelled while queued; the program never ran.',
    evidence: [`gpuq cancel removed the job from the GPU queue of ${node}`],
    hints: [],
  };
}

/**
 * How long past its deadline (start + timeout + grace) a job's supervisor may take to finish:
 * the node's `stallMargin` where its config sets one, else 30 s or a tenth of the timeout.
 */
export function stallMarginMs(timeoutS: number, marginS: number | null = null): number {
  if (marginS !== null) return Math.round(marginS * 1000);
  return Math.max(30_000, Math.round(timeoutS * 100)); // 30 s, or a tenth of the timeout
}

/**
 * When the client stops believing a job's supervisor: its start (as recorded at launch) plus
 * timeout, grace and the stall margin (the node's `stallMargin`, else the built-in one); null while it cannot be told (not started, no start time).
 * A supervisor alive past it has stalled (stopped, or stuck): the client ends the job itself.
 */
export function stallDeadlineMs(
  startedAt: string | null,
  limits: { timeoutS: number; graceS: number },
  marginS: number | null = null,
): number | null {
  const start = startedAt ? Date.parse(startedAt) : Number.NaN;
  if (!Number.isFinite(start)) return null;
  return start + (limits.timeoutS + limits.graceS) * 1000 + stallMarginMs(limits.timeoutS, marginS);
}

/** What the client saw and did when it ended a job whose supervisor stalled. */
export interface StallReport {
  /** The job's deadline (start + timeout + grace + margin), ms since the epoch. */
  deadlineMs: number;
  /** When the client acted, ms since the epoch. */
  atMs: number;
  /** The supervisor's pid and state letter (T: stopped) before it was killed; null when none was found. */
  supervisor: { pid: number; state: string } | null;
  /** Processes of the job the client killed. */
  killed: number;
  /** Whether the job's lock was free afterwards (no supervisor left holding it). */
  released: boolean;
  timeoutS: number;
}

/**
 * A job whose supervisor had not finished well past the job's deadline (SIGSTOPped, say), so
 * the client ended the job itself: `timeout`, cause `supervisor_stalled`. The job did run past
 * its wall-clock limit; no exit status of its own was recorded, so none is claimed.
 */
export function supervisorStalled(r: StallReport): Verdict {
  const late = Math.round((r.atMs - r.deadlineMs) / 1000);
  const sup = r.supervisor
    ? `its supervisor (pid ${r.supervisor.pid}, state ${r.supervisor.state}${r.supervisor.state === 'T' ? ': stopped' : ''}) had not finished`
    : 'no live supervisor of the job could be found, but its lock was still held';
  return {
    class: 'timeout',
    cause: 'supervisor_stalled',
    exitCode: null,
    signal: null,
    timedOut: true,
    summary: `Timed out: its supervisor stalled past the ${formatDuration(r.timeoutS)} limit, so gpuq ended the job itself.`,
    evidence: [
      `${sup} ${Math.max(0, late)} s after the job's deadline (timeout, grace and a margin)`,
      `gpuq killed ${r.killed} process${r.killed === 1 ? '' : 'es'} of the job${r.released ? '' : '; the job lock was still held afterwards'}`,
      'no exit status was recorded by the supervisor',
    ],
    hints: [
      "Something stopped or stuck the job's supervisor (SIGSTOP, a frozen node?); check the node with `gpuq nodes`.",
    ],
  };
}
