/**
 * The job protocol on a node: the one module that runs the scripts of commands.ts through a
 * Transport and turns their output into data.
 */
import { launchStatusOf } from '../core/job-files.js';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { NodeFaultError, UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import type { JobProbe, StatusFile } from '../core/types.js';
import type { RemoteCommand, Transport } from '../transport/transport.js';
import {
  adoptCommand,
  cancelCommand,
  followCommand,
  launchCommand,
  type NodeLocks,
  nodeStatusCommand,
  probeCommand,
  readLogCommand,
  sizeCommand,
  snapshotLogCommand,
  stopStalledCommand,
  waitEndCommand,
  setupJobCommand,
  unpackCommand,
  collectCommand,
  GRADE_REFUSALS,
  gradeJobCommand,
  type InlineFile,
  type PruneEntry,
  pruneCommand,
  competitionCheckCommand,
  FINGERPRINT_TIMEOUT_S,
} from './commands.js';
import { type CheckTarget, type CompetitionCheck, parseCompetitionCheck } from '../core/competition-check.js';
import { type BatchJob, type BatchOutcome, launchBatchCommand, parseBatchOutput } from './batch.js';
import { parseNodeStatus, type NodeStatus } from './node-status.js';
import { parseProbe } from './probe.js';

export interface LaunchFiles {
  /** The job folder on the node ("~/" allowed). */
  dir: string;
  localProgram: string;
  programName: string;
  /** Whether the program runs as `./NAME` (a `#!` script): uploaded 0700 instead of 0600. */
  executable: boolean;
  wrapper: string;
  monitor: string;
  /** templates/queue.py, the GPU queue's waiter (absent: not uploaded). */
  queue?: string;
  /** templates/grade.py and fingerprint.py, for a job its supervisor grades (absent: not uploaded). */
  grade?: { script: string; fingerprint: string };
  /** Upload progress of the program (bytes done, total), for a progress bar. */
  onProgress?: (done: number, total: number) => void;
  /**
   * The program and its --include files as one frame stream (core/file-frames), written into
   * work/ by templates/unpack.py in one channel; replaces the upload of `localProgram`. A
   * function: a launch retried on another node reads the files again.
   */
  bundle?: { source: () => AsyncIterable<Buffer>; maxBytes: number; unpackScript: string };
}

export type Probe = JobProbe & { missing: boolean };

/**
 * Runs a script and returns its stdout. A non-zero exit is the node's answer, not a lost link:
 * NodeFaultError (the transport itself rejects with NodeUnreachableError when the link fails).
 */
async function run(t: Transport, cmd: RemoteCommand): Promise<string> {
  const r = await t.exec(cmd);
  if (r.code !== 0) {
    const why = (r.stderr.trim().split('\n').pop() || `exit code ${r.code}`).trim();
    throw new NodeFaultError(t.node, `on node ${t.node}, could not ${cmd.purpose}: ${why}`);
  }
  return r.stdout;
}

function nonce(): string {
  return randomBytes(8).toString('hex');
}

/** Programs up to this size travel inside the one setup-and-launch round trip; larger ones over SFTP. */
export const INLINE_PROGRAM_MAX = 64 * 1024;

function parseStatus(t: Transport, dir: string, out: string): StatusFile {
  const status = launchStatusOf(out);
  if (status === null)
    throw new NodeFaultError(t.node, `on node ${t.node}, the supervisor wrote no readable status.json (${dir})`);
  return status;
}

/** The grading step's scripts as files of the job folder, for a job its supervisor grades (none otherwise). */
export function gradeInlineFiles(f: Pick<LaunchFiles, 'grade'>): InlineFile[] {
  if (f.grade === undefined) return [];
  return [
    { name: 'grade.py', content: f.grade.script, mode: 0o600 },
    { name: 'fingerprint.py', content: f.grade.fingerprint, mode: 0o600 },
  ];
}

/**
 * Creates the job folder (0700), writes program, wrapper and monitor, starts the supervisor.
 * A small program makes this one round trip; a larger one is uploaded over SFTP (with
 * progress) between making the folder and starting the supervisor.
 */
export async function launchJob(
  t: Transport,
  f: LaunchFiles,
  onWarning: (w: string) => void,
): Promise<{ dir: string; status: StatusFile }> {
  const templates: InlineFile[] = [
    { name: 'monitor.py', content: f.monitor, mode: 0o600 },
    { name: 'run.sh', content: f.wrapper, mode: 0o700 },
    ...(f.queue !== undefined ? [{ name: 'queue.py', content: f.queue, mode: 0o600 } as InlineFile] : []),
    ...gradeInlineFiles(f),
  ];
  const { size } = await stat(f.localProgram);
  const mode = f.executable ? 0o700 : 0o600;
  const inline = size <= INLINE_PROGRAM_MAX && !f.bundle;
  const files = inline
    ? [{ name: f.programName, content: await readFile(f.localProgram), mode } as InlineFile, ...templates]
    : templates;
  const r = await t.exec(setupJobCommand(f.dir, files, inline));
  leaseRefused(t, r);
  dockerRefused(t, r);
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n').slice(-3).join(' ').trim() || `exit code ${r.code}`;
    throw new NodeFaultError(
      t.node,
      `on node ${t.node}, could not ${inline ? 'start the job' : 'create the job folder'}: ${why}`,
    );
  }
  if (r.stderr.trim()) onWarning(`node ${t.node}: ${r.stderr.trim()}`);
  const nl = r.stdout.indexOf('\n');
  const dir = (nl < 0 ? r.stdout : r.stdout.slice(0, nl)).trim();
  if (inline) {
    f.onProgress?.(size, size);
    return { dir, status: parseStatus(t, dir, r.stdout.slice(nl + 1)) };
  }
  if (f.bundle) {
    const u = await t.send(unpackCommand(dir, f.bundle.unpackScript, f.bundle.maxBytes), f.bundle.source());
    if (u.code !== 0) {
      const why = u.stderr.trim().split('\n').slice(-2).join(' ').trim() || `exit code ${u.code}`;
      throw new NodeFaultError(t.node, `on node ${t.node}, could not write the uploaded files: ${why}`);
    }
  } else await t.upload(f.localProgram, `${dir}/${f.programName}`, { mode, onProgress: f.onProgress });
  const l = await t.exec(launchCommand(dir));
  leaseRefused(t, l);
  dockerRefused(t, l);
  if (l.code !== 0) {
    const why = (l.stderr.trim().split('\n').pop() || `exit code ${l.code}`).trim();
    throw new NodeFaultError(t.node, `on node ${t.node}, could not start the supervisor: ${why}`);
  }
  return { dir, status: parseStatus(t, dir, l.stdout) };
}

/**
 * Starts several jobs in one round trip (node/batch.ts): each job's folder, files and
 * supervisor; what became of each, in order, and the node's boot id. A script that failed
 * before starting anything (a full disk, missing tools) is a NodeFaultError.
 */
export async function launchBatch(
  t: Transport,
  jobs: readonly BatchJob[],
  shared: { monitor: string; queue?: string },
): Promise<{ jobs: BatchOutcome[]; bootId: string | null }> {
  const n = nonce();
  const r = await t.exec(launchBatchCommand(jobs, shared, n));
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n').slice(-3).join(' ').trim() || `exit code ${r.code}`;
    throw new NodeFaultError(t.node, `on node ${t.node}, could not start the jobs: ${why}`);
  }
  return parseBatchOutput(r.stdout, n, jobs.length);
}

/**
 * The launch's exit 75: the supervisor refused to start a GPU job without its lease (the node's
 * lock folder cannot be made or written, or python3 is missing). The node's own words, exit 3.
 */
function leaseRefused(t: Transport, r: { code: number | null; stderr: string }): void {
  if (r.code !== 75) return;
  throw leaseRefusedError(t.node, r.stderr);
}

/** The error of a node whose supervisor refused to start a GPU job without its lease, from its `gpuq: ` lines. */
export function leaseRefusedError(node: string, said: string): UserError {
  const last = said
    .split('\n')
    .filter((l) => l.startsWith('gpuq: '))
    .map((l) => l.slice(6).trim())
    .pop();
  return new UserError(
    last ?? `node ${node}: the GPU lock folder cannot be used`,
    EXIT.unreachable,
    `Fix the folder on node ${node}, or set the node's lockDir in the config.`,
  );
}

/**
 * The launch's exit 76: Docker cannot run the job on the node (its daemon is down, the socket is
 * not the account's to use, the image is missing): the node's words and hint, exit 3.
 */
function dockerRefused(t: Transport, r: { code: number | null; stderr: string }): void {
  if (r.code !== 76) return;
  const said = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('gpuq: '))
    .map((l) => l.slice(6).trim());
  const hint = said.find((l) => l.startsWith('hint: '))?.slice(6);
  throw new UserError(
    said.find((l) => !l.startsWith('hint: ')) ?? `node ${t.node}: Docker cannot run the job`,
    EXIT.unreachable,
    hint ? `${hint.charAt(0).toUpperCase()}${hint.slice(1)}.` : `Check Docker on node ${t.node} with: gpuq nodes`,
  );
}

/**
 * Whether a launch cut short by a dropped link had started the supervisor: its folder and
 * status when it had (the job runs; adopt it), null when nothing was started.
 */
export async function adoptLaunch(t: Transport, dir: string): Promise<{ dir: string; status: StatusFile } | null> {
  const out = await run(t, adoptCommand(dir));
  if (out.trim() === 'none') return null;
  const nl = out.indexOf('\n');
  const abs = out.slice(0, nl).trim();
  return { dir: abs, status: parseStatus(t, abs, out.slice(nl + 1)) };
}

/** What `gpuq grade` found on the node: the new grading read back, or why it could not grade. */
export type RegradeOutcome = { kind: 'graded'; probe: Probe } | { kind: 'no-folder' } | { kind: 'no-submission' };

/**
 * Grades a finished job again in its folder (issue 13): the current grade.py and fingerprint.py
 * written there, grade.py run with `args` (core/grading gradeArgs), the folder probed after, in
 * one round trip.
 */
export async function regradeJob(
  t: Transport,
  dir: string,
  submission: string,
  scripts: { grade: string; fingerprint: string },
  args: readonly string[],
): Promise<RegradeOutcome> {
  const n = nonce();
  const files: InlineFile[] = [
    { name: 'grade.py', content: scripts.grade, mode: 0o600 },
    { name: 'fingerprint.py', content: scripts.fingerprint, mode: 0o600 },
  ];
  const out = await run(t, gradeJobCommand(dir, submission, files, args, n));
  const first = out.split('\n', 1)[0]?.trim();
  if (first === GRADE_REFUSALS.noFolder) return { kind: 'no-folder' };
  if (first === GRADE_REFUSALS.noSubmission) return { kind: 'no-submission' };
  return { kind: 'graded', probe: parseProbe(out, n) };
}

/** Reads a job's status, peaks, stderr tail and liveness in one round trip. */
export async function probeJob(t: Transport, dir: string): Promise<Probe> {
  const n = nonce();
  return parseProbe(await run(t, probeCommand(dir, n)), n);
}

/**
 * Blocks until the job's supervisor is gone (finished or died), for at most `maxWaitS` seconds,
 * then probes (the probe may show it still running: the caller waits again). Abortable.
 */
export async function waitForEnd(
  t: Transport,
  dir: string,
  signal?: AbortSignal,
  maxWaitS = 60,
): Promise<Probe | null> {
  const n = nonce();
  const chunks: Buffer[] = [];
  let bytes = 0;
  const r = await t.stream(waitEndCommand(dir, n, maxWaitS), {
    onStdout: (c) => {
      // The node bounds every section; this bounds the whole, whatever the node printed.
      if (bytes < PROBE_OUTPUT_CAP) chunks.push(c);
      bytes += c.length;
    },
    signal,
  });
  if (signal?.aborted) return null;
  if (r.code !== 0)
    throw new NodeFaultError(t.node, `on node ${t.node}, could not wait for the job (exit code ${r.code})`);
  return parseProbe(Buffer.concat(chunks).toString('utf8'), n);
}

/** The most of a probe's output the client keeps (the node prints far less). */
const PROBE_OUTPUT_CAP = 4 * 1024 * 1024;

/** What stopStalled found and did on the node. */
export interface StallStop {
  /** The supervisor's pid and its state letter before the kill (T: stopped), or null when none was found. */
  supervisor: { pid: number; state: string } | null;
  /** Processes killed. */
  killed: number;
  /** Whether job.lock was free afterwards. */
  released: boolean;
}

/** Ends a job whose supervisor stalled: SIGKILL to the supervisor and the job's processes (stopStalledCommand). */
export async function stopStalled(t: Transport, dir: string, jobId: string): Promise<StallStop> {
  const out = await run(t, stopStalledCommand(dir, jobId));
  const sup = /^supervisor (\d+) ?([A-Za-z]?)$/m.exec(out);
  return {
    supervisor: sup ? { pid: Number(sup[1]), state: sup[2] || '?' } : null,
    killed: Number(/^killed (\d+)$/m.exec(out)?.[1] ?? 0),
    released: /^released yes$/m.test(out),
  };
}

/** Asks the supervisor to cancel; "gone" when it had already ended. */
export async function requestCancel(t: Transport, dir: string): Promise<'signalled' | 'gone'> {
  const out = await run(t, cancelCommand(dir));
  return out.trim() === 'signalled' ? 'signalled' : 'gone';
}

/**
 * Streams a file of the job folder from a byte offset until the job ends; returns the new
 * offset. Rejects (NodeUnreachableError) if the link drops, so the caller can resume. A promise
 * returned by `onChunk` holds the stream until it settles (backpressure).
 */
export async function followFile(
  t: Transport,
  dir: string,
  file: 'stdout.log' | 'stderr.log' | 'samples.jsonl',
  fromByte: number,
  onChunk: (c: Buffer) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  let offset = fromByte;
  await t.stream(followCommand(dir, file, fromByte), {
    onStdout: (c) => {
      offset += c.length;
      return onChunk(c);
    },
    signal,
  });
  return offset;
}

/**
 * Streams a whole log (as it was when the read began) or its last lines to `onChunk`, never
 * holding it in memory; a promise returned by `onChunk` holds the stream (backpressure).
 */
export async function streamLog(
  t: Transport,
  dir: string,
  file: 'stdout.log' | 'stderr.log',
  lines: number | null,
  onChunk: (c: Buffer) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const cmd = readLogCommand(dir, file, lines);
  const r = await t.stream(cmd, { onStdout: onChunk, signal });
  if (r.code !== 0 && !signal?.aborted)
    throw new NodeFaultError(t.node, `on node ${t.node}, could not ${cmd.purpose}: exit code ${r.code}`);
}

/** Byte size of a file in the job folder, for following from its current end. */
export async function fileSize(
  t: Transport,
  dir: string,
  file: 'stdout.log' | 'stderr.log' | 'samples.jsonl',
): Promise<number> {
  return Number((await run(t, sizeCommand(dir, file))).trim()) || 0;
}

/** A log as it is now (all of it, or its last lines) and its size: where a follower starts. */
export async function snapshotLog(
  t: Transport,
  dir: string,
  file: 'stdout.log' | 'stderr.log',
  lines: number | null,
): Promise<{ text: string; size: number }> {
  const out = await run(t, snapshotLogCommand(dir, file, lines));
  const nl = out.indexOf('\n');
  return { size: Number(out.slice(0, nl < 0 ? undefined : nl).trim()) || 0, text: nl < 0 ? '' : out.slice(nl + 1) };
}

/** Reads a node's load, jobs and (with `full`) memory, disk, inodes and GPUs in one round trip. */
export async function readNodeStatus(
  t: Transport,
  workdir: string,
  full: boolean,
  locks: NodeLocks | null = null,
): Promise<NodeStatus> {
  return parseNodeStatus(await run(t, nodeStatusCommand(workdir, full, locks)), locks ? locks.gpus : null);
}

/** What pruneCommand did with one job folder. */
export type PruneOutcome = 'removed' | 'measured' | 'absent' | 'link' | 'notdir' | 'outside' | 'held' | 'failed';

const PRUNE_OUTCOMES: readonly PruneOutcome[] = [
  'removed',
  'measured',
  'absent',
  'link',
  'notdir',
  'outside',
  'held',
  'failed',
];

/**
 * Measures, and with `remove` removes, job folders on a node in one round trip (pruneCommand);
 * returns each job's outcome and the bytes measured before removal. A job the node did not
 * answer for is missing from the map.
 */
export async function pruneFolders(
  t: Transport,
  workdir: string,
  entries: readonly PruneEntry[],
  remove: boolean,
): Promise<Map<string, { outcome: PruneOutcome; bytes: number }>> {
  const out = await run(t, pruneCommand(workdir, entries, remove));
  const wanted = new Set(entries.map((e) => e.id));
  const found = new Map<string, { outcome: PruneOutcome; bytes: number }>();
  for (const line of out.split('\n')) {
    const m = /^job (\S+) (\S+) (\d{1,18})$/.exec(line);
    if (!m || !wanted.has(m[1] as string) || !PRUNE_OUTCOMES.includes(m[2] as PruneOutcome)) continue;
    found.set(m[1] as string, { outcome: m[2] as PruneOutcome, bytes: Number(m[3]) });
  }
  return found;
}

/** What collectFiles read: each file as it came, and what the node left out. */
export interface CollectHandlers {
  /** A promise returned holds the stream (backpressure). */
  onChunk: (c: Buffer) => void | Promise<void>;
}

/**
 * Streams files of a job's work/ folder (or of `root`, another folder of the job folder) as
 * frames (core/file-frames) to `onChunk`: `paths`, or what the job created. Resolves once the
 * node's script ended; "gone" when the job folder is, "noroot" when `root` is not in it.
 */
export async function collectFiles(
  t: Transport,
  dir: string,
  script: string,
  caps: { fileBytes: number; totalBytes: number },
  entry: string,
  paths: readonly string[],
  onChunk: (c: Buffer) => void | Promise<void>,
  root = 'work',
): Promise<'ok' | 'gone' | 'noroot'> {
  const cmd = collectCommand(dir, script, caps, entry, paths, root);
  const err: Buffer[] = [];
  const r = await t.stream(cmd, { onStdout: onChunk, onStderr: (c) => err.length < 64 && err.push(c) });
  if (r.code === 4) return 'gone';
  if (r.code === 5 && root !== 'work') return 'noroot';
  if (r.code !== 0) {
    const why = Buffer.concat(err).toString('utf8').trim().split('\n').pop() || `exit code ${r.code}`;
    throw new NodeFaultError(t.node, `on node ${t.node}, could not ${cmd.purpose}: ${why}`);
  }
  return 'ok';
}

/**
 * `gpuq competitions check` on one node (competitionCheckCommand): whether each competition's
 * data, answers and grader are there, and the folders' fingerprints.
 */
export async function checkCompetitionsOn(
  t: Transport,
  workdir: string,
  targets: readonly CheckTarget[],
  fingerprintScript: string,
  timeoutS: number = FINGERPRINT_TIMEOUT_S,
): Promise<CompetitionCheck[]> {
  const out = await run(t, competitionCheckCommand(workdir, targets, fingerprintScript, timeoutS));
  return parseCompetitionCheck(out, targets, timeoutS);
}
