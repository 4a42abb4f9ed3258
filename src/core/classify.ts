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
 *
 * Order of events matters where the supervisor recorded when: a process killed for memory
 * before the wall-clock limit fired makes the verdict `oom` (the job then hung until the
 * timeout); an OOM kill after it (in the grace period) is evidence of a `timeout`. A limit
 * reached by a child (the monitor saw it vanish at --cpu-time, EFBIG/SIGXFSZ under
 * --file-size, forks refused under --pids) names that limit when the job failed, and is
 * reported (cause `limit_refused`) when it exited 0. Stderr alone never names a limit that was
 * not set.
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
  limitRefusedHints,
  lostHints,
  memoryHints,
  missingModuleHints,
  noNetworkHints,
  readOnlyFsHints,
  oomThenTimeoutHints,
  signalHints,
  syntaxErrorHints,
  timeoutHints,
  type HintTarget,
} from './hints.js';
import { analyzeStderr, type LimitCause, type StderrFindings } from './stderr-patterns.js';
import { describeSignal, SIG, signalFromExitCode, signalName } from './signals.js';
import type { JobProbe, Limits, MonitorFile, Sample, StatusFile, Verdict, VerdictClass } from './types.js';

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
    // The cancel is the whole story: no stderr line, no peaks, only the exit status beside it.
    return verdict(
      { ...f, base: [exitWords(status, signal)] },
      'cancelled',
      null,
      'Cancelled with gpuq cancel.',
      [cancelEvidence(status, limits)],
      [],
    );
  }
  if (status.timedOut || status.limitFired === 'timeout') return timedOut(f, probe.recentSamples);
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
    const child = childCpuLimit(f);
    if (child) return child;
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
  return limitRefused(f) ?? verdict(f, 'succeeded', null, 'Exited 0.', [], []);
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

/**
 * The OOM kills the supervisor recorded: the cgroup's count, then the kernel's lines. `when`
 * (", 3s after the start") is added to the first of them.
 */
function oomEvidence(status: StatusFile, limits: Limits, when = ''): string[] {
  const ev: string[] = [];
  const at = limits.memoryBytes !== null ? ` at its ${formatBytes(limits.memoryBytes)} limit` : '';
  if ((status.oomKills ?? 0) > 0)
    ev.push(`the job's memory cgroup counted ${plural(status.oomKills ?? 0, 'OOM kill')}${at}`);
  const kills = parseKernelOom(status.kernelOom);
  if (kills.length > 0) for (const k of kills.slice(-3)) ev.push(describeKernelOom(k));
  else for (const line of status.kernelOom.slice(-2)) ev.push(`kernel: ${clip(line)}`);
  if (when !== '' && ev.length > 0) ev[0] = `${ev[0]}${when}`;
  return ev;
}

/** Whether the supervisor recorded an OOM kill of a process of the job (cgroup counter or kernel line). */
function hadOomKill(status: StatusFile): boolean {
  return (status.oomKills ?? 0) > 0 || status.kernelOom.length > 0;
}

/**
 * When the first OOM kill happened (ms since the epoch, node clock), where recorded: the
 * monitor's sighting of the cgroup counter (the same clock as the timer's), else the kernel
 * log's time converted by the supervisor. Null for files written before these fields existed.
 */
function firstOomKillAtMs(status: StatusFile, monitor: MonitorFile | null): number | null {
  if (!hadOomKill(status)) return null;
  return monitor?.firstOomKillAtMs ?? status.kernelOomAtMs ?? null;
}

/** ", 3s after the start" for a time on the node's clock. */
function afterStart(status: StatusFile, atMs: number): string {
  return `, ${formatDuration(Math.max(0, atMs - status.startedAtMs) / 1000)} after the start`;
}

/** When the wall-clock limit fired: the supervisor's record, else the deadline (start + timeout). */
function timeoutFiredAtMs(status: StatusFile, limits: Limits): number {
  return status.limitFiredAtMs ?? status.startedAtMs + limits.timeoutS * 1000;
}

/**
 * The wall clock stopped it. When a process was killed for memory before the limit fired, that
 * kill is the cause (class `oom`, the job then hung); otherwise it is a timeout, with an OOM kill
 * in the grace period as later evidence and hints that follow the evidence (SIGTERM ignored first).
 */
function timedOut(f: Facts, samples: readonly Sample[]): Verdict {
  const { status, limits, monitor } = f;
  const firedAt = status.limitFiredAtMs ?? null;
  const oomAt = firstOomKillAtMs(status, monitor);
  const limitText = formatDuration(limits.timeoutS);
  const timeoutLine =
    `the wall-clock limit of ${limitText} fired` +
    `${status.killedAfterGrace ? ', then SIGKILL after the grace period' : ''}`;
  if (oomAt !== null && firedAt !== null && oomAt < firedAt) {
    const cause = (status.oomKills ?? 0) > 0 ? 'cgroup' : 'oom_killer';
    const who =
      cause === 'cgroup'
        ? limits.memoryBytes !== null
          ? `at the ${formatBytes(limits.memoryBytes)} limit`
          : 'at the memory limit'
        : 'by the kernel OOM killer';
    const inAt = formatDuration(Math.max(0, oomAt - status.startedAtMs) / 1000);
    const between = samples.filter((x) => x.t > oomAt && x.t < firedAt);
    const then =
      between.length >= 2 && idle(between)
        ? `the job then made no progress (idle) until the ${limitText} wall-clock limit stopped it`
        : `the job then did not finish before the ${limitText} wall-clock limit stopped it`;
    return verdict(
      f,
      'oom',
      cause,
      `One of its processes was killed for memory ${who} ${inAt} in; ${then}.`,
      [...oomEvidence(status, limits, afterStart(status, oomAt)), timeoutLine, ...rssEvidence(status, monitor, limits)],
      oomThenTimeoutHints(limits, monitor?.peakRssBytes ?? null, status.killedAfterGrace),
    );
  }
  const grace = status.killedAfterGrace
    ? `; it ignored SIGTERM and was killed ${formatDuration(limits.graceS)} later`
    : '';
  const oomLater =
    oomAt !== null && firedAt !== null
      ? oomEvidence(status, limits, `${afterStart(status, oomAt)}, after the wall-clock limit had fired`)
      : hadOomKill(status)
        ? oomEvidence(status, limits)
        : [];
  const fired = timeoutFiredAtMs(status, limits);
  const before = samples.filter((x) => x.t < fired);
  return verdict(
    f,
    'timeout',
    null,
    `Stopped at the ${limitText} wall-clock limit${grace}.`,
    [timeoutLine, ...oomLater],
    timeoutHints(limits, status.killedAfterGrace, looksIdle(before)),
  );
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

/**
 * Whether gpuq (or the node) set the limit a stderr line blames: stderr is the job's text, so it
 * names a limit only where one was in force. "File too large" without --file-size is a
 * filesystem's limit, not the job's; a refused fork counts under --pids or a pids cgroup refusal.
 */
function limitInForce(cause: LimitCause, f: Facts): boolean {
  switch (cause) {
    case 'file_size':
      return f.limits.fileSizeBytes !== null;
    case 'pids':
      return f.limits.pids !== null || (f.status.pidsRefused ?? 0) > 0;
    case 'open_files':
      return f.limits.files !== null;
    case 'disk_full':
      return true;
  }
}

/** The value of a limit for a sentence (" of 1 MiB"), empty where it has none. */
function limitValue(cause: LimitCause, limits: Limits): string {
  switch (cause) {
    case 'disk_full':
      return '';
    case 'pids':
      return limits.pids !== null ? ` of ${limits.pids}` : '';
    case 'open_files':
      return limits.files !== null ? ` of ${limits.files}` : '';
    case 'file_size':
      return limits.fileSizeBytes !== null ? ` of ${formatBytes(limits.fileSizeBytes)}` : '';
  }
}

/**
 * Processes, disk, descriptors, file size: from the pids cgroup, SIGXFSZ or stderr (a child's
 * "File too large" or "fork: Resource temporarily unavailable" counts: the job failed after it).
 * The supervisor's record leads the evidence, the quoted stderr line follows.
 */
function limitHit(f: Facts): Verdict | null {
  const { status, limits, signal, stderr, t } = f;
  let cause: LimitCause | null = null;
  let quota = false;
  const ev: string[] = [];
  const refused = status.pidsRefused ?? 0;
  if (stderr.limit && stderrCanExplain(signal) && limitInForce(stderr.limit.cause, f)) {
    cause = stderr.limit.cause;
    quota = stderr.limit.quota;
  } else if (signal === SIG.XFSZ) {
    cause = 'file_size';
    ev.push('the program was killed by SIGXFSZ (file-size limit)');
  } else if (refused > 0) {
    cause = 'pids';
  }
  if (cause === null) return null;
  if (refused > 0 && cause === 'pids') ev.push(`the pids cgroup refused ${plural(refused, 'fork')}`);
  if (stderr.limit && stderr.limit.cause === cause) ev.push(`stderr: ${clip(stderr.limit.line)}`);
  if (refused > 0 && cause !== 'pids') ev.push(`the pids cgroup refused ${plural(refused, 'fork')}`);
  if (cause === 'pids') {
    // --pids counts processes and threads together: the same peak every page shows.
    const tasks = peaksAgainstLimits({ monitor: f.monitor, status, limits }).find((p) => p.key === 'tasks');
    if (tasks) ev.push(tasks.text);
  }
  const summary = `${capitalise(LIMIT_WORDS[cause])}${limitValue(cause, limits)}${quota ? ' (a disk quota)' : ''}.`;
  return verdict(f, 'limit', cause, summary, ev, limitHints({ cause, quota, line: stderr.limit?.line }, limits, t));
}

/** "its process sort (pid 42)" or "its main process", for a process the monitor named. */
function processWords(f: Facts, hit: { pid: number; name: string }): string {
  if (hit.pid === f.status.pid) return 'its main process';
  return `its process ${clip(printable(hit.name), 40)} (pid ${hit.pid})`;
}

/**
 * A process of the job (a child, usually) reached the per-process CPU-time limit: the monitor
 * saw it vanish at the limit, which the supervisor cannot see from the main process's exit.
 */
function childCpuLimit(f: Facts): Verdict | null {
  const hit = f.monitor?.cpuLimitHit ?? null;
  if (hit === null || f.limits.cpuTimeS === null) return null;
  const lim = formatDuration(f.limits.cpuTimeS);
  const then = f.signal !== null ? `died of ${signalName(f.signal)}` : `exited with code ${f.status.exitCode}`;
  return verdict(
    f,
    'limit',
    'cpu_time',
    `${capitalise(processWords(f, hit))} was stopped at the ${lim} CPU-time limit, and the job then ${then}.`,
    [cpuHitEvidence(f, hit)],
    cpuTimeHints(f.limits),
  );
}

function cpuHitEvidence(f: Facts, hit: { pid: number; name: string; cpuSeconds: number }): string {
  return (
    `${processWords(f, hit)} was last seen at ${hit.cpuSeconds.toFixed(2)}s of CPU time, within reach of the ` +
    `${formatDuration(f.limits.cpuTimeS ?? 0)} per-process CPU-time limit, and then vanished`
  );
}

/**
 * The job exited 0 although a limit stopped one of its processes or refused it something (a
 * write past --file-size, a fork under --pids, a file under --files): still a success, cause
 * `limit_refused`, with what was refused as evidence. Null when nothing was.
 */
function limitRefused(f: Facts): Verdict | null {
  const { status, limits, stderr, t } = f;
  const hit = f.monitor?.cpuLimitHit ?? null;
  if (hit !== null && limits.cpuTimeS !== null) {
    return verdict(
      f,
      'succeeded',
      'limit_refused',
      `Exited 0, but ${processWords(f, hit)} was stopped at the ${formatDuration(limits.cpuTimeS)} ` +
        'CPU-time limit, so its results may be incomplete.',
      [cpuHitEvidence(f, hit)],
      limitRefusedHints(cpuTimeHints(limits)),
    );
  }
  const refused = status.pidsRefused ?? 0;
  const line = stderr.limit;
  const cause: LimitCause | null =
    line && line.cause !== 'disk_full' && limitInForce(line.cause, f) ? line.cause : refused > 0 ? 'pids' : null;
  if (cause === null) return null;
  const what: Record<LimitCause, string> = {
    file_size: 'a write',
    pids: 'a new process or thread',
    open_files: 'a file',
    disk_full: 'a write',
  };
  const names: Record<LimitCause, string> = {
    file_size: 'file-size limit',
    pids: 'process limit',
    open_files: 'open-files limit',
    disk_full: 'disk',
  };
  const ev: string[] = [];
  if (cause === 'pids' && refused > 0) ev.push(`the pids cgroup refused ${plural(refused, 'fork')}`);
  if (line && line.cause === cause) ev.push(`stderr: ${clip(line.line)}`);
  return verdict(
    f,
    'succeeded',
    'limit_refused',
    `Exited 0, but the ${names[cause]}${limitValue(cause, limits)} refused it ${what[cause]}, ` +
      'so its results may be incomplete.',
    ev,
    limitRefusedHints(limitHints({ cause, quota: false, line: line?.line }, limits, t)),
  );
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
    case 'read_only_fs':
      return verdict(
        f,
        'failed',
        'read_only_fs',
        `It wrote where the file system is read-only${hit.file ? `: ${hit.file}` : ''}.`,
        ev,
        readOnlyFsHints(hit, f.status.boundary === 'container'),
      );
    case 'no_network':
      // Outside a container a failed connection is the network's business, not a cause gpuq names.
      if (f.status.boundary !== 'container') return null;
      return verdict(f, 'failed', 'no_network', 'It tried to use the network, and its container has none.', ev, [
        ...noNetworkHints(),
      ]);
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

/**
 * The last samples (of those given: the caller keeps only the ones taken before the limit
 * fired) show neither CPU nor GPU use: a hang rather than slow work.
 */
function looksIdle(samples: readonly Sample[]): boolean {
  const last = samples.slice(-5);
  return last.length >= 3 && idle(last);
}

/** Every sample shows neither CPU nor GPU use. */
function idle(samples: readonly Sample[]): boolean {
  return samples.every((x) => x.cpuPct < 2 && (x.gpu ?? []).every((g) => (g.utilPct ?? 0) < 2));
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
