import type { VerdictClass } from './types.js';

/** Exit codes of the public contract, besides the verdict codes below. */
export const EXIT = {
  ok: 0,
  bug: 1,
  usage: 2,
  unreachable: 3,
  noSuchJob: 4,
  ledger: 5,
} as const;

const VERDICT_EXIT: Record<VerdictClass, number> = {
  succeeded: 0,
  failed: 10,
  timeout: 11,
  oom: 12,
  gpu_oom: 13,
  limit: 14,
  signaled: 15,
  cancelled: 16,
  lost: 17,
  grading_failed: 18,
  rejected: 19,
};

/** The exit code `submit --wait` and `wait` return for a verdict class. */
export function exitCodeForVerdict(cls: VerdictClass): number {
  return VERDICT_EXIT[cls];
}

/** For `wait ID…`: the worst verdict code, i.e. the highest. */
export function worstExitCode(codes: number[]): number {
  return codes.reduce((a, b) => Math.max(a, b), 0);
}
