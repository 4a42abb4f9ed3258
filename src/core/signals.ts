/**
 * Linux signal numbers and names, and how a shell reports a death by signal (128 + N).
 * Pure constant tables; the numbering is Linux x86-64/arm64 (the nodes gpuq runs on).
 */

/** Linux signal numbers 1–31 by number. 32 and 33 belong to glibc's threads; 34–64 are real-time. */
const NAMES: Readonly<Record<number, string>> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  4: 'SIGILL',
  5: 'SIGTRAP',
  6: 'SIGABRT',
  7: 'SIGBUS',
  8: 'SIGFPE',
  9: 'SIGKILL',
  10: 'SIGUSR1',
  11: 'SIGSEGV',
  12: 'SIGUSR2',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
  16: 'SIGSTKFLT',
  17: 'SIGCHLD',
  18: 'SIGCONT',
  19: 'SIGSTOP',
  20: 'SIGTSTP',
  21: 'SIGTTIN',
  22: 'SIGTTOU',
  23: 'SIGURG',
  24: 'SIGXCPU',
  25: 'SIGXFSZ',
  26: 'SIGVTALRM',
  27: 'SIGPROF',
  28: 'SIGWINCH',
  29: 'SIGIO',
  30: 'SIGPWR',
  31: 'SIGSYS',
};

/** The signals gpuq reasons about by number. */
export const SIG = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  ABRT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  SEGV: 11,
  PIPE: 13,
  TERM: 15,
  XCPU: 24,
  XFSZ: 25,
} as const;

/** Highest signal number on Linux (SIGRTMAX). */
export const MAX_SIGNAL = 64;

/** glibc's SIGRTMIN as `kill -l` shows it. */
const RTMIN = 34;

/** Plain-words description of the signals a job commonly dies of, for summaries. */
const DESCRIPTIONS: Readonly<Record<number, string>> = {
  1: 'hang-up',
  2: 'interrupt',
  3: 'quit (core dump)',
  4: 'illegal instruction',
  6: 'abort',
  7: 'bus error',
  8: 'arithmetic error',
  9: 'kill',
  11: 'segmentation fault',
  13: 'broken pipe',
  14: 'alarm',
  15: 'termination request',
  24: 'CPU-time limit',
  25: 'file-size limit',
  31: 'bad system call',
};

/**
 * The name of a Linux signal number ("SIGKILL"), as `kill -l` spells it; real-time signals are
 * "SIGRTMIN+N" / "SIGRTMAX-N", anything else "SIG<n>". Verdicts carry names, not numbers.
 */
export function signalName(signal: number): string {
  const known = NAMES[signal];
  if (known !== undefined) return known;
  if (signal >= RTMIN && signal <= MAX_SIGNAL) {
    const fromMin = signal - RTMIN;
    const fromMax = MAX_SIGNAL - signal;
    if (fromMin === 0) return 'SIGRTMIN';
    if (fromMax === 0) return 'SIGRTMAX';
    return fromMin <= 15 ? `SIGRTMIN+${fromMin}` : `SIGRTMAX-${fromMax}`;
  }
  return `SIG${signal}`;
}

/**
 * The signal behind a shell exit status of 128 + N, or null for an ordinary exit. A shell (and
 * the supervisor) reports a child killed by signal N that way; 129–192 are the only such codes.
 */
export function signalFromExitCode(exitCode: number | null): number | null {
  if (exitCode === null || !Number.isInteger(exitCode)) return null;
  const n = exitCode - 128;
  return n >= 1 && n <= MAX_SIGNAL ? n : null;
}

/** A few words for a signal ("segmentation fault"), or its name when it has no common meaning. */
export function describeSignal(signal: number): string {
  return DESCRIPTIONS[signal] ?? signalName(signal);
}
