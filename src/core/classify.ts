/**
 * The verdict of a finished job, from what its supervisor recorded (status.json, monitor.json)
 * and the tail of its stderr. Pure: plain data in, a Verdict out.
 *
 * Precedence, strongest evidence first: a gpuq cancel, the wall-clock timeout, host memory
 * (memory watch, cgroup OOM kills, kernel OOM lines, MemoryError), the CPU-time limit, the other
 * limits (processes, disk, descriptors, file size), GPU out of memory, what the program itself
 * reported (missing module, syntax error …), a signal nothing explains, and plain failure.
 * Stderr is only believed for a job that did not exit 0 and did not die of a signal other than
 * SIGABRT (an uncaught C++ exception aborts): a success that printed "CUDA out of memory" is a
 * success, and a MemoryError printed before a SIGKILL from outside does not explain the SIGKILL.
 * When stderr ends in a Python traceback, only that final report counts (analyzeStderr).
 * A child OOM-killed while the main process exited 0 is a success with cause `child_oom`.
 */
import { clip, formatBytes, formatDuration, formatPercent, plural, printable } from './format.js';
import { describeKernelOom, parseKernelOom, peaksAgainstLimits } from './peaks.js';
import {
  childOomHints,
  commandNotFoundHints,
  cpuTimeHints,
  cudaUnavailableHints,
  failedHints,
  fileNotFoundHints,
  gpuOomHints,
  limitHints,
  lostHints,
  memoryHints,
  missingModuleHints,
  signalHints,
  syntaxErrorHints,
  timeoutHints,
  type HintTarget,
} from './hints.js';
import { analyzeStderr, type LimitCause, type StderrFindings } from './stderr-patterns.js';
import { describeSignal, SIG, signalFromExitCode, signalName } from './signals.js';
import type { JobProbe, Limits, MonitorFile, StatusFile, Verdict, VerdictClass } from './types.js';

export interface ClassifyInput {
  probe: JobProbe & { missing: boolean };
  limits: Limits;
  /**
   * The ledger shows `gpuq cancel` was asked for. Evidence only: whether the job was cancelled is
   * the supervisor's record (status.cancelled), since a cancel reaches the job through it.
   */
  cancelRequested: boolean;
  /** The node's boot id when the job started, to tell a reboot from a vanished supervisor. */
  launchBootId: string | null;
  node: string | null;
  jobId?: string | null;
}

interface Facts {
  status: StatusFile;
  monitor: MonitorFile | null;
  limits: Limits;
  signal: number | null;
  stderr: StderrFindings;
  t: HintTarget;
  /** Evidence every verdict carries: exit status, peaks against limits, the quoted stderr line. */
  base: string[];
}

const LIMIT_WORDS: Record<LimitCause, string> = {
  disk_full: 'the disk was full',
  pids: 'it hit the process limit',
  open_files: 'it hit the open-files limit',
  file_size: 'it hit the file-size limit',
};

/** Maps a finished (or vanished) job to the contract's verdict; see the module comment. */
export function classify(input: ClassifyInput): Verdict {
  const { probe, limits } = input;
  const t: HintTarget = { node: input.node, jobId: input.jobId ?? null };
  const status = probe.status;
  if (probe.missing || status === null || status.state !== 'exited') return lost(input, t);

  const signal = status.signal ?? signalFromExitCode(status.exitCode);
  const stderr = analyzeStderr(probe.stderrTail, (status.pidsRefused ?? 0) > 0);
  const f: Facts = {
    status,
    monitor: probe.monitor,
    limits,
    signal,
    stderr,
    t,
    base: baseEvidence(status, signal, stderr),
  };
  const failed = status.exitCode !== 0;

  // Only the supervisor's record counts: a cancel reaches the job through it, so a cancel it did
  // not see arrived after the job had ended (see `signaled` for what that adds).
  if (status.cancelled) {
    return verdict(f, 'cancelled', null, 'Cancelled with gpuq cancel.', [cancelEvidence(status, limits)], []);
  }
  if (status.timedOut || status.limitFired === 'timeout') {
    const grace = status.killedAfterGrace
      ? `; it ignored SIGTERM and was killed ${formatDuration(limits.graceS)} later`
      : '';
    return verdict(
      f,
      'timeout',
      null,
      `Stopped at the ${formatDuration(limits.timeoutS)} wall-clock limit${grace}.`,
      [
        `the wall-clock limit of ${formatDuration(limits.timeoutS)} fired` +
          `${status.killedAfterGrace ? ', then SIGKILL after the grace period' : ''}`,
      ],
      timeoutHints(limits, status.killedAfterGrace, looksIdle(input.probe)),
    );
  }
  const memory = memoryKill(f, failed);
  if (memory) return memory;
  if (cpuTimeKill(status, limits, signal)) {
    const lim = limits.cpuTimeS !== null ? ` of ${formatDuration(limits.cpuTimeS)}` : '';
    const used = status.cpuSeconds !== null ? ` after ${formatDuration(status.cpuSeconds)} of CPU time` : '';
    return verdict(
      f,
      'limit',
      'cpu_time',
      `Killed at the CPU-time limit${lim}${used}.`,
      [
        `the CPU-time limit${lim} fired ` +
          `(${status.limitFired === 'cpu' ? 'the supervisor recorded it' : `${signalName(signal ?? SIG.XCPU)}`})`,
      ],
      cpuTimeHints(limits),
    );
  }
  if (failed) {
    const limit = limitHit(f);
    if (limit) return limit;
    const gpu = stderr.gpuOom;
    if (gpu && stderrCanExplain(signal)) {
      const asked = gpu.requested ? ` trying to allocate ${gpu.requested}` : '';
      const free = gpu.free && gpu.total ? ` with ${gpu.free} free of ${gpu.total}` : '';
      const ev = [`stderr: ${clip(gpu.line)}`];
      if (probe.monitor?.peakGpuMemBytes != null)
        ev.push(`GPU memory peaked at ${formatBytes(probe.monitor.peakGpuMemBytes)} (last sample before the error)`);
      return verdict(f, 'gpu_oom', null, `The GPU ran out of memory${asked}${free}.`, ev, gpuOomHints(gpu));
    }
    const program = signal === null ? programCause(f) : null;
    if (program) return program;
    if (signal !== null) return signaled(f, signal, input.probe.stderrTail, input.cancelRequested);
    const said = stderr.lastLine ? `: ${clip(stderr.lastLine, 120)}` : ' and wrote nothing to stderr';
    return verdict(
      f,
      'failed',
      null,
      `Exited with code ${status.exitCode}${said}${/[.!?…]$/.test(said) ? '' : '.'}`,
      [],
      failedHints(t, stderr.lastLine === null),
    );
  }
  const childOom = (status.oomKills ?? 0) > 0 || status.kernelOom.length > 0;
  if (childOom) {
    return verdict(
      f,
      'succeeded',
      'child_oom',
      'Exited 0, but one of its processes was killed for memory, so its results may be incomplete.',
      oomEvidence(status, limits),
      childOomHints(limits),
    );
  }
  return verdict(f, 'succeeded', null, 'Exited 0.', [], []);
}

/** The CPU-time limit killed it: the supervisor says so, SIGXCPU, or SIGKILL with the CPU time all used. */
function cpuTimeKill(status: StatusFile, limits: Limits, signal: number | null): boolean {
  if (status.limitFired === 'cpu' || signal === SIG.XCPU) return true;
  return (
    signal === SIG.KILL &&
    limits.cpuTimeS !== null &&
    status.cpuSeconds !== null &&
    status.cpuSeconds + 1 >= limits.cpuTimeS
  );
}

function verdict(
  f: Facts,
  cls: VerdictClass,
  cause: string | null,
  summary: string,
  evidence: string[],
  hints: string[],
): Verdict {
  return {
    class: cls,
    cause,
    exitCode: f.status.exitCode,
    signal: f.signal !== null ? signalName(f.signal) : null,
    timedOut: f.status.timedOut,
    // kernel lines name processes, and those names are the job's to choose
    summary: printable(summary),
    evidence: [...new Set([...evidence, ...f.base])].map(printable),
    hints: hints.map(printable),
  };
}

function lost(input: ClassifyInput, t: HintTarget): Verdict {
  const { probe } = input;
  const rebooted = input.launchBootId !== null && probe.bootId !== null && probe.bootId !== input.launchBootId;
  const evidence = rebooted
    ? [`the node's boot id changed from ${input.launchBootId} to ${probe.bootId}`]
    : probe.missing
      ? ['the job folder is gone from the node']
      : [`the supervisor is gone and status.json says "${probe.status?.state ?? 'nothing'}"`];
  return {
    class: 'lost',
    cause: rebooted ? 'rebooted' : 'vanished',
    exitCode: null,
    signal: null,
    timedOut: false,
    summary: rebooted
      ? 'The node rebooted while the job ran; its exit status is lost.'
      : probe.missing
        ? 'The job folder vanished from the node; its exit status is lost.'
        : 'The supervisor vanished before the job ended; its exit status is lost.',
    evidence,
    hints: lostHints(rebooted ? 'rebooted' : 'vanished', t),
  };
}

function exitWords(status: StatusFile, signal: number | null): string {
  if (signal !== null) return `exit code ${status.exitCode} (${signalName(signal)}, ${describeSignal(signal)})`;
  return `exit code ${status.exitCode}`;
}

/**
 * Evidence every verdict carries: the exit status, leftovers the sweep killed, and the stderr line
 * a person would quote. Peaks are evidence only where they explain the cause (memory, processes);
 * `gpuq show` and `gpuq diagnose` list them all from monitor.json.
 */
function baseEvidence(status: StatusFile, signal: number | null, stderr: StderrFindings): string[] {
  const ev = [exitWords(status, signal)];
  if (status.leftovers > 0)
    ev.push(`${plural(status.leftovers, 'leftover process', 'leftover processes')} killed after the job ended`);
  if (status.exitCode !== 0 && stderr.lastLine) ev.push(`stderr: ${clip(stderr.lastLine)}`);
  return ev;
}

/** The memory peaks (tree RSS, the cgroup's own) against the memory limit, as evidence, where measured. */
function rssEvidence(status: StatusFile, monitor: MonitorFile | null, limits: Limits): string[] {
  return peaksAgainstLimits({ monitor, status, limits })
    .filter((p) => p.key === 'memory')
    .map((p) => p.text);
}

function cancelEvidence(status: StatusFile, limits: Limits): string {
  return status.killedAfterGrace
    ? `gpuq cancel sent SIGTERM, then SIGKILL after the ${formatDuration(limits.graceS)} grace period`
    : 'gpuq cancel sent SIGTERM to the process group';
}

function oomEvidence(status: StatusFile, limits: Limits): string[] {
  const ev: string[] = [];
  const at = limits.memoryBytes !== null ? ` at its ${formatBytes(limits.memoryBytes)} limit` : '';
  if ((status.oomKills ?? 0) > 0)
    ev.push(`the job's memory cgroup counted ${plural(status.oomKills ?? 0, 'OOM kill')}${at}`);
  const kills = parseKernelOom(status.kernelOom);
  if (kills.length > 0) for (const k of kills.slice(-3)) ev.push(describeKernelOom(k));
  else for (const line of status.kernelOom.slice(-2)) ev.push(`kernel: ${clip(line)}`);
  return ev;
}

/** Host memory: the supervisor's evidence first, then MemoryError and friends in stderr. */
function memoryKill(f: Facts, failed: boolean): Verdict | null {
  const { status, monitor, limits } = f;
  const peak = monitor?.peakRssBytes ?? null;
  const lim = limits.memoryBytes !== null ? ` of ${formatBytes(limits.memoryBytes)}` : '';
  if (status.limitFired === 'memory' || monitor?.memoryWatchFired) {
    const at = monitor?.memoryWatchRssBytes ?? peak;
    return verdict(
      f,
      'oom',
      'memory_watch',
      `Killed for going over the memory limit${lim}` +
        `${at !== null ? ` when its processes held ${formatBytes(at)}` : ''}.`,
      [
        `gpuq's memory watch killed the job when its processes' RSS ` +
          `reached ${at !== null ? formatBytes(at) : 'the limit'}`,
        ...rssEvidence(status, monitor, limits),
      ],
      memoryHints(limits, peak),
    );
  }
  if (!failed) return null;
  if ((status.oomKills ?? 0) > 0 || status.kernelOom.length > 0) {
    const cause = (status.oomKills ?? 0) > 0 ? 'cgroup' : 'oom_killer';
    const who = cause === 'cgroup' ? `at the memory limit${lim}` : 'by the kernel OOM killer';
    // The main process died of a signal: it was the one killed. Otherwise a child was, and the
    // program then failed on its own (a DataLoader worker killed, the main raising about it).
    const then = f.signal !== null ? `died of ${signalName(f.signal)}` : `exited with code ${status.exitCode}`;
    const summary =
      f.signal === SIG.KILL
        ? `Killed for memory ${who}.`
        : `One of its processes was killed for memory ${who}, and it then ${then}.`;
    return verdict(
      f,
      'oom',
      cause,
      summary,
      [...oomEvidence(status, limits), ...rssEvidence(status, monitor, limits)],
      memoryHints(limits, peak),
    );
  }
  const host = f.stderr.hostMemory;
  if (host && stderrCanExplain(f.signal)) {
    const asked = host.requested ? ` of ${host.requested}` : '';
    const under = limits.memoryBytes !== null ? ` under the ${formatBytes(limits.memoryBytes)} memory limit` : '';
    return verdict(
      f,
      'oom',
      'memory_error',
      `An allocation${asked} was refused${under}, so the program ran out of memory.`,
      [`stderr: ${clip(host.line)}`, ...rssEvidence(status, monitor, limits)],
      memoryHints(limits, peak, host.requested),
    );
  }
  // SIGKILL with nothing recorded, but the sampler saw the tree at the limit: the cgroup's
  // counter or the kernel log was out of reach, and memory is by far the likeliest killer.
  if (
    f.signal === SIG.KILL &&
    limits.memoryBytes !== null &&
    peak !== null &&
    peak >= RSS_AT_LIMIT * limits.memoryBytes
  ) {
    return verdict(
      f,
      'oom',
      'rss_at_limit',
      `Killed by SIGKILL with its memory at ${formatPercent(peak / limits.memoryBytes)} ` +
        `of the ${formatBytes(limits.memoryBytes)} limit, almost surely for memory.`,
      [
        ...rssEvidence(status, monitor, limits),
        'no OOM kill was recorded (no memory cgroup counter or kernel log readable on the node)',
      ],
      memoryHints(limits, peak),
    );
  }
  return null;
}

/** A SIGKILLed job whose sampled RSS reached this share of --memory is taken as a memory kill. */
const RSS_AT_LIMIT = 0.9;

/** Processes, disk, descriptors, file size: from the pids cgroup, SIGXFSZ or stderr. */
function limitHit(f: Facts): Verdict | null {
  const { status, limits, signal, stderr, t } = f;
  let cause: LimitCause | null = null;
  let quota = false;
  const ev: string[] = [];
  if (stderr.limit && stderrCanExplain(signal)) {
    cause = stderr.limit.cause;
    quota = stderr.limit.quota;
    ev.push(`stderr: ${clip(stderr.limit.line)}`);
  } else if (signal === SIG.XFSZ) {
    cause = 'file_size';
    ev.push('the program was killed by SIGXFSZ (file-size limit)');
  } else if ((status.pidsRefused ?? 0) > 0) {
    cause = 'pids';
  }
  if (cause === null) return null;
  if ((status.pidsRefused ?? 0) > 0) ev.push(`the pids cgroup refused ${plural(status.pidsRefused ?? 0, 'fork')}`);
  const limitValue: Record<LimitCause, string> = {
    disk_full: '',
    pids: limits.pids !== null ? ` of ${limits.pids}` : '',
    open_files: limits.files !== null ? ` of ${limits.files}` : '',
    file_size: limits.fileSizeBytes !== null ? ` of ${formatBytes(limits.fileSizeBytes)}` : '',
  };
  if (cause === 'pids') {
    // --pids counts processes and threads together: the same peak every page shows.
    const tasks = peaksAgainstLimits({ monitor: f.monitor, status, limits }).find((p) => p.key === 'tasks');
    if (tasks) ev.push(tasks.text);
  }
  const summary = `${capitalise(LIMIT_WORDS[cause])}${limitValue[cause]}${quota ? ' (a disk quota)' : ''}.`;
  return verdict(f, 'limit', cause, summary, ev, limitHints({ cause, quota, line: stderr.limit?.line }, limits, t));
}

/** Causes the program reports itself: missing module, syntax error, no CUDA, file not found. */
function programCause(f: Facts): Verdict | null {
  const hit = f.stderr.programCause;
  if (!hit) return null;
  const ev = [`stderr: ${clip(hit.line)}`];
  switch (hit.cause) {
    case 'missing_module': {
      const what = hit.library ?? (hit.importName && hit.module ? `${hit.importName} from ${hit.module}` : hit.module);
      return verdict(
        f,
        'failed',
        'missing_module',
        `Could not import ${what ?? 'a module'} on node ${f.t.node ?? '?'}.`,
        ev,
        missingModuleHints(hit, f.t),
      );
    }
    case 'syntax_error':
      return verdict(
        f,
        'failed',
        'syntax_error',
        `A syntax error${hit.lineNo !== null ? ` at line ${hit.lineNo}` : ''} stopped it before it ran.`,
        ev,
        syntaxErrorHints(hit),
      );
    case 'cuda_unavailable':
      return verdict(
        f,
        'failed',
        'cuda_unavailable',
        'CUDA was not available to the program.',
        ev,
        cudaUnavailableHints(hit, f.limits),
      );
    case 'file_not_found':
      return verdict(
        f,
        'failed',
        'file_not_found',
        `A file it needs was not found${hit.file ? `: ${hit.file}` : ''}.`,
        ev,
        fileNotFoundHints(hit),
      );
    case 'command_not_found':
      return verdict(
        f,
        'failed',
        'command_not_found',
        `A command was not found on the node${hit.detail ? `: ${hit.detail}` : ''}.`,
        ev,
        commandNotFoundHints(hit, f.t),
      );
  }
}

function signaled(f: Facts, signal: number, stderrText: string, cancelRequested: boolean): Verdict {
  const name = signalName(signal);
  const late = cancelRequested ? ['a gpuq cancel was asked for, but the job had already ended when it arrived'] : [];
  return verdict(
    f,
    'signaled',
    name.toLowerCase(),
    signalSummary(signal, f.stderr),
    late,
    signalHints(signal, f.t, stderrText),
  );
}

/** One sentence for a death by a signal gpuq did not send. */
function signalSummary(signal: number, stderr: StderrFindings): string {
  const name = signalName(signal);
  switch (signal) {
    case SIG.SEGV:
      return 'Crashed with a segmentation fault (SIGSEGV) in native code.';
    case SIG.ABRT: {
      const cxx = stderr.lines
        .map((l) => /terminate called after throwing an instance of '([^']+)'/.exec(l)?.[1])
        .filter(Boolean)
        .pop();
      if (stderr.lines.some((l) => /device-side assert/.test(l)))
        return 'Aborted (SIGABRT) by a CUDA device-side assertion.';
      if (cxx) return `Aborted (SIGABRT) by an uncaught C++ exception (${cxx}).`;
      return 'Aborted (SIGABRT), usually by a failed assertion or an uncaught C++ exception.';
    }
    case SIG.BUS:
      return 'Crashed with a bus error (SIGBUS), often shared memory (/dev/shm) running out.';
    case SIG.KILL:
      return 'Killed by SIGKILL from outside gpuq: no gpuq limit fired and no OOM kill was recorded.';
    case SIG.TERM:
      return 'Stopped by SIGTERM from outside gpuq, not by a gpuq cancel or limit.';
    case SIG.INT:
    case SIG.HUP:
      return `Stopped by ${name} (${describeSignal(signal)}) from outside gpuq.`;
    default:
      return `Died of ${name} (${describeSignal(signal)}).`;
  }
}

/**
 * Whether what stderr says can be why it died: an ordinary exit, or an abort (an uncaught C++
 * exception such as std::bad_alloc or c10::OutOfMemoryError). A job killed by any other signal
 * died of that signal, whatever it printed before.
 */
function stderrCanExplain(signal: number | null): boolean {
  return signal === null || signal === SIG.ABRT;
}

/** The last samples show neither CPU nor GPU use: a hang rather than slow work. */
function looksIdle(probe: JobProbe): boolean {
  const last = probe.recentSamples.slice(-5);
  if (last.length < 3) return false;
  return last.every((s) => s.cpuPct < 2 && (s.gpu ?? []).every((g) => (g.utilPct ?? 0) < 2));
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
