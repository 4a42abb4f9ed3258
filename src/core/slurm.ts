/**
 * Slurm, as data: the sbatch arguments gpuq builds for a job, what sbatch, squeue, sacct and sinfo
 * print (parsed, bounded, never trusted for more than it says), and the verdict where Slurm knows
 * more than the supervisor could write (README, "Slurm"). Pure: no process, no clock.
 */
import type { Verdict } from './types.js';

/**
 * sbatch options a node's `sbatchArgs` may carry (as `--name` or `--name=value`). Everything gpuq
 * sets itself (time, memory, GPUs, CPUs, output, folder, name, partition, account, QOS, requeue)
 * and everything that would change what runs (--wrap, --array, --dependency…) is refused.
 */
export const SBATCH_ALLOWED = [
  'begin',
  'clusters',
  'comment',
  'constraint',
  'cpu-freq',
  'exclude',
  'exclusive',
  'gres-flags',
  'hint',
  'licenses',
  'mail-type',
  'mail-user',
  'mem-bind',
  'nice',
  'nodelist',
  'reservation',
  'signal',
  'tmp',
  'wckey',
] as const;

/** Why one extra sbatch argument is refused, or null when it is allowed. */
export function sbatchArgProblem(arg: string): string | null {
  const m = /^--([a-z][a-z-]*)(?:=(.*))?$/s.exec(arg);
  if (!m) return `"${arg}" is not of the form --option or --option=value`;
  if (!(SBATCH_ALLOWED as readonly string[]).includes(m[1] as string))
    return `sbatch option --${m[1]} is not allowed (gpuq sets time, memory, GPUs, CPUs, output and folder itself)`;
  if (m[2] !== undefined && /[\0\n\r]/.test(m[2])) return `the value of --${m[1]} holds a line break`;
  return null;
}

/** What sbatch is told about one job. */
export interface SbatchSpec {
  jobId: string;
  /** The job folder on the shared file system (absolute, or "~/" for the login account's home). */
  dir: string;
  partition: string | null;
  account: string | null;
  qos: string | null;
  gpus: number;
  /** gpuq's memory limit in bytes (null: the partition's default applies). */
  memoryBytes: number | null;
  cpusPerTask: number;
  timeoutS: number | null;
  graceS: number;
  extra: readonly string[];
}

/** Room for the supervisor and the sampler next to the program, over gpuq's own memory limit. */
export const SUPERVISOR_MEMORY_MIB = 256;

/**
 * Slurm's time limit for a job, in whole minutes (Slurm's granularity): gpuq's timeout plus its
 * grace plus a margin (a minute, or a tenth of the timeout), so that gpuq's own timer fires first
 * and its evidence stays exact. Null: no limit asked (the partition's).
 */
export function slurmTimeMinutes(timeoutS: number | null, graceS: number): number | null {
  if (timeoutS === null || !Number.isFinite(timeoutS)) return null;
  const margin = Math.max(60, timeoutS / 10);
  return Math.max(1, Math.ceil((timeoutS + graceS + margin) / 60));
}

/** sbatch's command line for a job (the batch script `slurm.sh` in the job folder last). */
export function sbatchArgs(s: SbatchSpec): string[] {
  const args = ['--parsable', `--job-name=gpuq-${s.jobId}`, '--output=slurm.out', '--no-requeue'];
  if (s.partition) args.push(`--partition=${s.partition}`);
  if (s.account) args.push(`--account=${s.account}`);
  if (s.qos) args.push(`--qos=${s.qos}`);
  if (s.gpus > 0) args.push(`--gres=gpu:${s.gpus}`);
  if (s.memoryBytes !== null) args.push(`--mem=${Math.ceil(s.memoryBytes / 1024 ** 2) + SUPERVISOR_MEMORY_MIB}M`);
  args.push(`--cpus-per-task=${Math.max(1, Math.floor(s.cpusPerTask))}`);
  const min = slurmTimeMinutes(s.timeoutS, s.graceS);
  if (min !== null) args.push(`--time=${min}`);
  args.push(...s.extra, 'slurm.sh');
  return args;
}

/** The Slurm job id sbatch --parsable printed ("123" or "123;cluster"), or null. */
export function parseSbatchId(stdout: string): string | null {
  const line = stdout.trim().split('\n').pop()?.trim() ?? '';
  const m = /^(\d{1,12})(?:;[\w.-]{1,64})?$/.exec(line);
  return m ? (m[1] as string) : null;
}

/** Slurm's job states (long names, as squeue %T and sacct print them). */
export const SLURM_STATES = [
  'PENDING',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESV_DEL_HOLD',
  'SPECIAL_EXIT',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'STOPPED',
  'SIGNALING',
  'STAGE_OUT',
  'RESIZING',
  'COMPLETED',
  'CANCELLED',
  'FAILED',
  'TIMEOUT',
  'NODE_FAIL',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'OUT_OF_MEMORY',
  'REVOKED',
] as const;
export type SlurmState = (typeof SLURM_STATES)[number];

/** Where a state puts the job for gpuq: waiting for an allocation, allocated, or over. */
export function slurmPhase(state: SlurmState): 'waiting' | 'allocated' | 'ended' {
  switch (state) {
    case 'PENDING':
    case 'REQUEUED':
    case 'REQUEUE_HOLD':
    case 'REQUEUE_FED':
    case 'RESV_DEL_HOLD':
    case 'SPECIAL_EXIT':
      return 'waiting';
    case 'CONFIGURING':
    case 'RUNNING':
    case 'COMPLETING':
    case 'SUSPENDED':
    case 'STOPPED':
    case 'SIGNALING':
    case 'STAGE_OUT':
    case 'RESIZING':
      return 'allocated';
    default:
      return 'ended';
  }
}

/** A state word as Slurm printed it ("CANCELLED by 0", "CANCELLED+"), or null when unknown. */
export function parseSlurmState(word: string): { state: SlurmState; byUid: number | null } | null {
  const m = /^([A-Z_]{3,20})\+?(?: by (\d{1,10}))?$/.exec(word.trim());
  if (!m || !(SLURM_STATES as readonly string[]).includes(m[1] as string)) return null;
  return { state: m[1] as SlurmState, byUid: m[2] !== undefined ? Number(m[2]) : null };
}

/** The squeue format gpuq asks for: the reason last, so that nothing in it can shift a field. */
export const SQUEUE_FORMAT = '%i|%T|%P|%Q|%V|%S|%r';

/** One job as squeue shows it. */
export interface SqueueRow {
  id: string;
  state: SlurmState;
  partition: string;
  priority: number;
  /** Slurm's local times as printed ("2026-11-28T07:36:31"), null for N/A. */
  submitTime: string | null;
  startTime: string | null;
  reason: string | null;
}

const printableReason = (r: string) =>
  r
    .replace(/[^\x20-\x7e]/g, '?')
    .trim()
    .slice(0, 200);
const slurmTime = (t: string | undefined) => (t && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(t.trim()) ? t.trim() : null);

/** squeue's rows in SQUEUE_FORMAT; lines that are not rows (errors, noise) are skipped. */
export function parseSqueue(text: string): SqueueRow[] {
  const rows: SqueueRow[] = [];
  for (const line of text.split('\n').slice(0, 100_000)) {
    const f = line.split('|');
    if (f.length < 7) continue;
    const id = (f[0] as string).trim();
    const st = parseSlurmState(f[1] as string);
    if (!/^\d{1,12}$/.test(id) || !st) continue;
    const prio = Number((f[3] as string).trim());
    const reason = printableReason(f.slice(6).join('|'));
    rows.push({
      id,
      state: st.state,
      partition: printableReason(f[2] as string).slice(0, 64),
      priority: Number.isFinite(prio) ? prio : 0,
      submitTime: slurmTime(f[4]),
      startTime: slurmTime(f[5]),
      reason: reason === '' || reason === 'None' || reason === '(null)' ? null : reason,
    });
  }
  return rows;
}

/**
 * Slurm's local time ("2026-11-28T07:36:31") as ISO 8601 UTC, given the login node's UTC offset as
 * `date +%z` prints it ("+0100"); null when either is not understood.
 */
export function slurmTimeToIso(t: string | null, zone: string): string | null {
  if (t === null) return null;
  const z = /^([+-])(\d\d)(\d\d)$/.exec(zone.trim());
  if (!z) return null;
  const ms = Date.parse(`${t}${z[1]}${z[2]}:${z[3]}`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/**
 * The job's place among its partition's pending jobs (1 = next), as Slurm orders them: higher
 * priority first, then earlier submit, then lower id. Null when it is not pending there.
 */
export function pendingPosition(jobId: string, pending: readonly SqueueRow[]): number | null {
  const mine = pending.find((r) => r.id === jobId);
  if (!mine) return null;
  const ahead = pending.filter(
    (r) =>
      r.id !== jobId &&
      r.partition === mine.partition &&
      slurmPhase(r.state) === 'waiting' &&
      (r.priority > mine.priority ||
        (r.priority === mine.priority &&
          ((r.submitTime ?? '') < (mine.submitTime ?? '') ||
            ((r.submitTime ?? '') === (mine.submitTime ?? '') && Number(r.id) < Number(mine.id))))),
  );
  return ahead.length + 1;
}

/** A finished job as sacct records it. */
export interface SacctRow {
  id: string;
  state: SlurmState;
  /** Who cancelled it, where Slurm says ("CANCELLED by 1000"). */
  byUid: number | null;
  exitCode: number | null;
  signal: number | null;
  reason: string | null;
}

/** The format of `sacct -n -P -X -o` gpuq asks for. */
export const SACCT_FIELDS = 'JobIDRaw,State,ExitCode,Reason';

/** sacct's row for one job (`-P`: fields split by "|"), or null when it has none. */
export function parseSacct(text: string, jobId: string): SacctRow | null {
  for (const line of text.split('\n').slice(0, 10_000)) {
    const f = line.split('|');
    if (f.length < 3 || (f[0] as string).trim() !== jobId) continue;
    const st = parseSlurmState(f[1] as string);
    if (!st) continue;
    const ec = /^(\d{1,3}):(\d{1,3})$/.exec((f[2] as string).trim());
    const reason = printableReason(f.slice(3).join('|'));
    return {
      id: jobId,
      state: st.state,
      byUid: st.byUid,
      exitCode: ec ? Number(ec[1]) : null,
      signal: ec && Number(ec[2]) > 0 ? Number(ec[2]) : null,
      reason: reason === '' || reason === 'None' ? null : reason,
    };
  }
  return null;
}

/** What Slurm says of one job now: in squeue, in sacct only, or neither (vanished). */
export interface SlurmJobView {
  row: SqueueRow | null;
  acct: SacctRow | null;
  /** Its place among the partition's pending jobs, while pending. */
  position: number | null;
  /** The login node's UTC offset (`date +%z`), for Slurm's local times. */
  zone: string;
}

/** The state Slurm gives the job, from squeue first, then sacct; null when neither knows it. */
export function slurmStateOf(v: SlurmJobView): SlurmState | null {
  return v.row?.state ?? v.acct?.state ?? null;
}

/** The queue view of a pending job ({position, reason, estimatedStart}, as node queues give it). */
export function slurmQueueView(v: SlurmJobView): { position: number; reason: string; estimatedStart: string | null } {
  const r = v.row;
  const why = r?.reason ?? null;
  return {
    position: v.position ?? 1,
    reason: why ? `Slurm: ${why}` : 'Slurm: waiting to be scheduled',
    estimatedStart: slurmTimeToIso(r?.startTime ?? null, v.zone),
  };
}

const SIGNALS: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  6: 'SIGABRT',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  15: 'SIGTERM',
};

/** What sacct's state and exit add to the evidence, in one line. */
export function slurmEvidence(slurmId: string, v: SlurmJobView): string {
  const st = slurmStateOf(v);
  if (st === null) return `Slurm job ${slurmId} is gone from squeue and sacct`;
  const a = v.acct;
  const exit = a && a.exitCode !== null ? `, exit ${a.exitCode}:${a.signal ?? 0}` : '';
  const by = a?.byUid != null ? ` by uid ${a.byUid}` : '';
  const why = (v.row?.reason ?? a?.reason) ? ` (${v.row?.reason ?? a?.reason})` : '';
  return `Slurm job ${slurmId}: ${st}${by}${exit}${why}`;
}

/** What the client knows beside Slurm when it judges a job the supervisor did not finish. */
export interface SlurmJudgeInput {
  slurmId: string;
  view: SlurmJobView;
  /** gpuq cancel asked for this job (the ledger's note or the folder's cancel.requested). */
  cancelRequested: boolean;
  /** The supervisor had started (status.json was written). */
  supervisorStarted: boolean;
  /** gpuq's limits, for the words of a timeout or a memory kill. */
  timeoutS: number;
}

const verdict = (v: Omit<Verdict, 'exitCode' | 'signal' | 'timedOut'> & Partial<Verdict>): Verdict => ({
  exitCode: null,
  signal: null,
  timedOut: false,
  ...v,
});

/**
 * The verdict of a job whose supervisor could not write its end, from Slurm's record: node
 * failure and a vanished job are `lost`, preemption says so, Slurm's time limit is a `timeout`,
 * its memory kill `oom`, a cancel `cancelled` when gpuq asked for it and `signaled` (cause
 * `slurm_cancelled`) when someone else did. Null while Slurm says the job has not ended.
 */
export function slurmVerdict(i: SlurmJudgeInput): Verdict | null {
  const st = slurmStateOf(i.view);
  const ev = [slurmEvidence(i.slurmId, i.view)];
  if (st !== null && slurmPhase(st) !== 'ended') return null;
  const a = i.view.acct;
  const exitCode = a?.exitCode ?? null;
  const signal = a?.signal != null ? (SIGNALS[a.signal] ?? `signal ${a.signal}`) : null;
  const noSup = i.supervisorStarted
    ? 'the supervisor did not record how the job ended'
    : 'the supervisor never started';
  switch (st) {
    case null:
      return verdict({
        class: 'lost',
        cause: 'slurm_vanished',
        summary: `Lost: Slurm no longer knows job ${i.slurmId} (not in squeue nor sacct), and ${noSup}.`,
        evidence: ev,
        hints: ['Ask the cluster admins what happened to it (slurmctld log), then submit again.'],
      });
    case 'NODE_FAIL':
    case 'BOOT_FAIL':
      return verdict({
        class: 'lost',
        cause: 'node_fail',
        summary: `Lost: the Slurm node running it failed (${st}).`,
        evidence: ev,
        hints: ['Submit again; Slurm will place it on a working node.'],
      });
    case 'PREEMPTED':
      return verdict({
        class: 'lost',
        cause: 'preempted',
        exitCode,
        signal,
        summary: 'Preempted by Slurm: a job of higher priority took its resources.',
        evidence: ev,
        hints: ['Submit again, or use a partition or QOS that is not preempted.'],
      });
    case 'TIMEOUT':
    case 'DEADLINE':
      return verdict({
        class: 'timeout',
        cause: 'slurm_time_limit',
        exitCode,
        signal,
        timedOut: true,
        summary: `Timed out: Slurm's time limit ended it (${st}) before gpuq's own ${i.timeoutS} s timer recorded it.`,
        evidence: ev,
        hints: ['Raise --timeout; if the partition caps job time lower, use another partition.'],
      });
    case 'OUT_OF_MEMORY':
      return verdict({
        class: 'oom',
        cause: 'slurm_oom',
        exitCode,
        signal,
        summary: "Out of memory: Slurm's memory cgroup killed the job.",
        evidence: ev,
        hints: ['Raise --memory (gpuq asks Slurm for it plus room for its supervisor), or use less memory.'],
      });
    case 'CANCELLED':
      if (i.cancelRequested)
        return verdict({
          class: 'cancelled',
          cause: null,
          exitCode,
          signal,
          summary: i.supervisorStarted ? 'Cancelled.' : 'Cancelled while queued in Slurm; the program never ran.',
          evidence: ev,
          hints: [],
        });
      return slurmCancelledOutside(i.slurmId, i.view, ev, i.supervisorStarted);
    default:
      return verdict({
        class: 'lost',
        cause: 'supervisor_vanished',
        exitCode,
        signal,
        summary: `Lost: Slurm ended job ${i.slurmId} (${st}), and ${noSup}.`,
        evidence: ev,
        hints: ["See the job folder's slurm.out and supervisor.log with `gpuq diagnose`, then submit again."],
      });
  }
}

/** A Slurm job cancelled by someone other than gpuq (an administrator's `scancel`). */
function slurmCancelledOutside(slurmId: string, v: SlurmJobView, evidence: string[], ran: boolean): Verdict {
  const by = v.acct?.byUid != null ? ` by uid ${v.acct.byUid}` : '';
  return verdict({
    class: 'signaled',
    cause: 'slurm_cancelled',
    exitCode: v.acct?.exitCode ?? null,
    signal: 'SIGTERM',
    summary: `Cancelled in Slurm from outside gpuq (scancel${by})${ran ? '' : ' before it started'}.`,
    evidence,
    hints: [`Ask whoever cancelled Slurm job ${slurmId} why (the cluster's admins), then submit again.`],
  });
}

/**
 * The supervisor's verdict with what Slurm adds: its record as evidence, and a job that died of a
 * SIGTERM nobody in gpuq sent, while Slurm says CANCELLED, named as cancelled from outside gpuq.
 */
export function withSlurmRecord(v: Verdict, i: SlurmJudgeInput): Verdict {
  const st = slurmStateOf(i.view);
  const evidence = [...v.evidence, slurmEvidence(i.slurmId, i.view)];
  if (st === 'CANCELLED' && !i.cancelRequested && v.class !== 'cancelled' && v.class !== 'succeeded')
    return { ...slurmCancelledOutside(i.slurmId, i.view, evidence, true), exitCode: v.exitCode, signal: v.signal };
  if (st === 'PREEMPTED' && v.class !== 'succeeded')
    return { ...v, cause: 'preempted', summary: `Preempted by Slurm: ${v.summary}`, evidence };
  return { ...v, evidence };
}

/** One node of a partition as sinfo shows it. */
export interface SinfoNode {
  name: string;
  state: string;
  gpus: number;
  gpusUsed: number;
  cpusIdle: number | null;
  cpusTotal: number | null;
}

/** The sinfo format gpuq asks for (`-N -O`): host, state, GRES, GRES used, CPUs A/I/O/T. */
export const SINFO_FORMAT = 'NodeHost:|,StateLong:|,Gres:|,GresUsed:|,CPUsState:|';

/** GPUs in a GRES text ("gpu:2", "gpu:a100:4(S:0-1)", "gpu:1(IDX:0),gpu:v100:1(IDX:2)"). */
export function gresGpus(text: string): number {
  let n = 0;
  for (const part of text.split(/,(?![^(]*\))/)) {
    const m = /^gpu(?::[\w.-]+)?:(\d{1,6})(?:\(|$)/.exec(part.trim());
    if (m) n += Number(m[1]);
  }
  return n;
}

/** sinfo's node rows in SINFO_FORMAT. */
export function parseSinfo(text: string): SinfoNode[] {
  const out: SinfoNode[] = [];
  for (const line of text.split('\n').slice(0, 10_000)) {
    const f = line.split('|');
    if (f.length < 5) continue;
    const name = (f[0] as string).trim();
    if (!/^[\w.-]{1,128}$/.test(name)) continue;
    const cpus = /^(\d+)\/(\d+)\/(\d+)\/(\d+)$/.exec((f[4] as string).trim());
    out.push({
      name,
      state: printableReason(f[1] as string).slice(0, 40),
      gpus: gresGpus(f[2] as string),
      gpusUsed: gresGpus(f[3] as string),
      cpusIdle: cpus ? Number(cpus[2]) : null,
      cpusTotal: cpus ? Number(cpus[4]) : null,
    });
  }
  return out;
}

/** A partition at a glance, for `gpuq nodes`. */
export interface PartitionSummary {
  partition: string | null;
  nodes: { idle: number; mixed: number; allocated: number; down: number; other: number };
  gpus: number;
  gpusFree: number;
  pendingJobs: number;
  runningJobs: number;
}

/** Counts nodes by state, GPUs free on usable nodes, and jobs pending and running. */
export function summarizePartition(
  partition: string | null,
  nodes: readonly SinfoNode[],
  jobs: readonly SqueueRow[],
): PartitionSummary {
  const s: PartitionSummary = {
    partition,
    nodes: { idle: 0, mixed: 0, allocated: 0, down: 0, other: 0 },
    gpus: 0,
    gpusFree: 0,
    pendingJobs: jobs.filter((j) => slurmPhase(j.state) === 'waiting').length,
    runningJobs: jobs.filter((j) => slurmPhase(j.state) === 'allocated').length,
  };
  for (const n of nodes) {
    const st = n.state.replace(/[*~#!%$@^-]+$/, '').toLowerCase();
    const usable = st === 'idle' || st === 'mixed' || st === 'allocated' || st === 'completing';
    if (st === 'idle') s.nodes.idle++;
    else if (st === 'mixed') s.nodes.mixed++;
    else if (st === 'allocated' || st === 'completing') s.nodes.allocated++;
    else if (/down|drain|fail|not_responding|unknown|reboot|maint|power/.test(st)) s.nodes.down++;
    else s.nodes.other++;
    s.gpus += n.gpus;
    if (usable) s.gpusFree += Math.max(0, n.gpus - n.gpusUsed);
  }
  return s;
}

/**
 * Slurm's own words from a failing command's stderr ("sbatch: error: Batch job submission failed:
 * Invalid partition name specified"): the most telling line, printable and bounded.
 */
export function slurmMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => printableReason(l))
    .filter((l) => l !== '');
  const telling = [/submission failed/, /Unable to contact|Could not establish/, /[Ii]nvalid|not allowed|denied/];
  const best =
    telling.map((re) => lines.find((l) => re.test(l))).find((l) => l !== undefined) ?? lines.at(-1) ?? 'no message';
  return best.slice(0, 300);
}

/** Whether Slurm's words say its controller cannot be reached (exit 3), rather than refusing the job (exit 2). */
export function slurmUnreachable(message: string): boolean {
  return /Unable to contact slurm controller|Socket timed out|Connection refused|connect failure|Munge|munge|Could not establish a configuration source|Zero Bytes were transmitted/.test(
    message,
  );
}
