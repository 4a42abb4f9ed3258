/**
 * The verdict of a finished job, from what its supervisor recorded (status.json, monitor.json)
 * and the tail of its stderr. Pure: plain data in, a Verdict out.
 *
 * Precedence, strongest evidence first: a gpuq cancel, the wall-clock timeout, host memory
 * (memory watch, cgroup OOM kills, kernel OOM lines, MemoryError), the CPU-time limit, the other
 * limits (processes, disk, descriptors, file size), GPU out of memory, what the program itself
 * reported (missing module, syntax error …), a signal nothing explains, and plain failure.
 * Stderr is only believed for a job that did not exit 0: a success that printed
 * "CUDA out of memory" is a success.
 */
import { clip, formatBytes, formatDuration, formatPercent, plural } from './format.js';
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
  /** The ledger shows `gpuq cancel` was asked for. */
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
  open_files: 'it ran out of file descriptors',
  file_size: 'it hit the file-size limit',
};

/** Maps a finished (or vanished) job to the contract's verdict; see the module comment. */
export function classify(input: ClassifyInput): Verdict {
  const { probe, limits } = input;
  const t: HintTarget = { node: input.node, jobId: input.jobId ?? null };
  const status = probe.status;
  if (probe.missing || status === null || status.state !== 'exited') return lost(input, t);

  const signal = status.signal ?? signalFromExitCode(status.exitCode);
  const stderr = analyzeStderr(probe.stderrTail, limits.pids !== null || (status.pidsRefused ?? 0) > 0);
  const f: Facts = { status, monitor: probe.monitor, limits, signal, stderr, t, base: baseEvidence(status, probe.monitor, limits, signal, stderr) };
  const failed = status.exitCode !== 0;

  if (status.cancelled) {
    return verdict(f, 'cancelled', null, 'Cancelled with gpuq cancel.', [cancelEvidence(status, limits)], []);
  }
  if (status.timedOut || status.limitFired === 'timeout') {
    const grace = status.killedAfterGrace ? `; it ignored SIGTERM and was killed ${formatDuration(limits.graceS)} later` : '';
    return verdict(
      f,
      'timeout',
      null,
      `Stopped at the ${formatDuration(limits.timeoutS)} wall-clock limit${grace}.`,
      [`the wall-clock limit of ${formatDuration(limits.timeoutS)} fired${status.killedAfterGrace ? ', then SIGKILL after the grace period' : ''}`],
      timeoutHints(limits, status.killedAfterGrace, looksIdle(input.probe)),
    );
  }
  const memory = memoryKill(f, failed);
  if (memory) return memory;
  if (status.limitFired === 'cpu' || signal === SIG.XCPU) {
    const lim = limits.cpuTimeS !== null ? ` of ${formatDuration(limits.cpuTimeS)}` : '';
    return verdict(f, 'limit', 'cpu_time', `Killed at the CPU-time limit${lim}.`, [`the CPU-time limit${lim} fired (${status.cpuSeconds ?? '?'} CPU seconds used)`], cpuTimeHints(limits));
  }
  if (failed) {
    const limit = limitHit(f);
    if (limit) return limit;
    const gpu = stderr.gpuOom;
    if (gpu && !externalKill(signal)) {
      const asked = gpu.requested ? ` trying to allocate ${gpu.requested}` : '';
      const free = gpu.free && gpu.total ? ` with ${gpu.free} free of ${gpu.total}` : '';
      return verdict(f, 'gpu_oom', null, `The GPU ran out of memory${asked}${free}.`, [`stderr: ${clip(gpu.line)}`], gpuOomHints(gpu));
    }
    const program = signal === null ? programCause(f) : null;
    if (program) return program;
    if (signal !== null) return signaled(f, signal, input.probe.stderrTail);
    return verdict(
      f,
      'failed',
      null,
      `Exited with code ${status.exitCode}${stderr.lastLine ? `: ${clip(stderr.lastLine, 120)}` : '.'}`,
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
      'Exited 0, but one of its processes was killed for memory; check the results.',
      oomEvidence(status),
      childOomHints(limits),
    );
  }
  return verdict(f, 'succeeded', null, 'Exited 0.', [], []);
}

function verdict(f: Facts, cls: VerdictClass, cause: string | null, summary: string, evidence: string[], hints: string[]): Verdict {
  return {
    class: cls,
    cause,
    exitCode: f.status.exitCode,
    signal: f.signal !== null ? signalName(f.signal) : null,
    timedOut: f.status.timedOut,
    summary,
    evidence: [...evidence, ...f.base],
    hints,
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

function baseEvidence(status: StatusFile, monitor: MonitorFile | null, limits: Limits, signal: number | null, stderr: StderrFindings): string[] {
  const ev = [exitWords(status, signal)];
  if (monitor && monitor.samples > 0) {
    const rss = limits.memoryBytes !== null
      ? `RSS peaked at ${formatBytes(monitor.peakRssBytes)} of the ${formatBytes(limits.memoryBytes)} limit (${formatPercent(monitor.peakRssBytes / limits.memoryBytes)})`
      : `RSS peaked at ${formatBytes(monitor.peakRssBytes)}`;
    ev.push(rss);
    ev.push(limits.pids !== null ? `processes peaked at ${monitor.peakProcs} of the ${limits.pids} limit` : `processes peaked at ${monitor.peakProcs}`);
    if (monitor.peakGpuMemBytes !== null) ev.push(`GPU memory peaked at ${formatBytes(monitor.peakGpuMemBytes)}`);
  }
  if (status.leftovers > 0) ev.push(`${plural(status.leftovers, 'leftover process', 'leftover processes')} killed after the job ended`);
  if (status.exitCode !== 0 && stderr.lastLine) ev.push(`stderr: ${clip(stderr.lastLine)}`);
  return ev;
}

function cancelEvidence(status: StatusFile, limits: Limits): string {
  return status.killedAfterGrace
    ? `gpuq cancel sent SIGTERM, then SIGKILL after the ${formatDuration(limits.graceS)} grace period`
    : 'gpuq cancel sent SIGTERM to the process group';
}

function oomEvidence(status: StatusFile): string[] {
  const ev: string[] = [];
  if ((status.oomKills ?? 0) > 0) ev.push(`the job's memory cgroup counted ${plural(status.oomKills ?? 0, 'OOM kill')}`);
  for (const line of status.kernelOom.slice(-3)) ev.push(`kernel: ${clip(line)}`);
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
      `Killed for going over the memory limit${lim}.`,
      [`gpuq's memory watch killed the job when its processes' RSS reached ${at !== null ? formatBytes(at) : 'the limit'}`],
      memoryHints(limits, peak),
    );
  }
  if (!failed) return null;
  if ((status.oomKills ?? 0) > 0 || status.kernelOom.length > 0) {
    const cause = (status.oomKills ?? 0) > 0 ? 'cgroup' : 'oom_killer';
    const who = cause === 'cgroup' ? `at the memory limit${lim}` : 'by the kernel OOM killer';
    return verdict(f, 'oom', cause, `Killed for memory ${who}.`, oomEvidence(status), memoryHints(limits, peak));
  }
  const host = f.stderr.hostMemory;
  if (host && !externalKill(f.signal)) {
    const asked = host.requested ? ` (it asked for ${host.requested})` : '';
    return verdict(
      f,
      'oom',
      'memory_error',
      `An allocation was refused${limits.memoryBytes !== null ? ` under the ${formatBytes(limits.memoryBytes)} memory limit` : ''}${asked}.`,
      [`stderr: ${clip(host.line)}`],
      memoryHints(limits, peak),
    );
  }
  return null;
}

/** Processes, disk, descriptors, file size: from the pids cgroup, SIGXFSZ or stderr. */
function limitHit(f: Facts): Verdict | null {
  const { status, limits, signal, stderr, t } = f;
  let cause: LimitCause | null = null;
  let quota = false;
  const ev: string[] = [];
  if (stderr.limit && !externalKill(signal)) {
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
  const summary = `${capitalise(LIMIT_WORDS[cause])}${limitValue[cause]}${quota ? ' (a disk quota)' : ''}.`;
  return verdict(f, 'limit', cause, summary, ev, limitHints({ cause, quota }, limits, t));
}

/** Causes the program reports itself: missing module, syntax error, no CUDA, file not found. */
function programCause(f: Facts): Verdict | null {
  const hit = f.stderr.programCause;
  if (!hit) return null;
  const ev = [`stderr: ${clip(hit.line)}`];
  switch (hit.cause) {
    case 'missing_module': {
      const what = hit.library ?? (hit.importName && hit.module ? `${hit.importName} from ${hit.module}` : hit.module);
      return verdict(f, 'failed', 'missing_module', `Could not import ${what ?? 'a module'} on node ${f.t.node ?? '?'}.`, ev, missingModuleHints(hit, f.t));
    }
    case 'syntax_error':
      return verdict(f, 'failed', 'syntax_error', `A syntax error${hit.lineNo !== null ? ` at line ${hit.lineNo}` : ''} stopped it before it ran.`, ev, syntaxErrorHints(hit));
    case 'cuda_unavailable':
      return verdict(f, 'failed', 'cuda_unavailable', 'CUDA was not available to the program.', ev, cudaUnavailableHints(hit, f.limits));
    case 'file_not_found':
      return verdict(f, 'failed', 'file_not_found', `A file it needs was not found${hit.file ? `: ${hit.file}` : ''}.`, ev, fileNotFoundHints(hit));
    case 'command_not_found':
      return verdict(f, 'failed', 'command_not_found', `A command was not found on the node${hit.detail ? `: ${hit.detail}` : ''}.`, ev, commandNotFoundHints(hit, f.t));
  }
}

function signaled(f: Facts, signal: number, stderrText: string): Verdict {
  const name = signalName(signal);
  const outside = externalKill(signal);
  const summary = outside
    ? `Killed by ${name} from outside gpuq (no limit of gpuq's fired).`
    : `Died of ${name} (${describeSignal(signal)}).`;
  return verdict(f, 'signaled', name.toLowerCase(), summary, [], signalHints(signal, f.t, stderrText));
}

/** SIGKILL/SIGTERM/SIGINT/SIGHUP come from someone else; what stderr said before is not why it died. */
function externalKill(signal: number | null): boolean {
  return signal === SIG.KILL || signal === SIG.TERM || signal === SIG.INT || signal === SIG.HUP;
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
