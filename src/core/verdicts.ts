/**
 * Verdicts gpuq gives without a probe to classify: a job that never reached its node, one
 * cancelled before it started. Pure; the services record them, `classify` covers the rest.
 */
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
