/**
 * The bash gpuq runs on a Slurm node's login side (or on this machine), built as data: the
 * batch script, sbatch, the squeue/sacct look-up of a job, scancel, and the partition's view.
 * Every value is quoted here; src/node/slurm.ts is the one module that runs them.
 */
import { sh, shPath, shWords } from '../core/quote.js';
import { SACCT_FIELDS, SINFO_FORMAT, SQUEUE_FORMAT } from '../core/slurm.js';
import type { RemoteCommand } from '../transport/transport.js';
import { READ_FUNCTIONS } from './commands.js';

/** Marks the sections of a Slurm command's output. */
export const SLURM_MARK = '@@gpuq-slurm@@';

/**
 * The batch script Slurm runs on the compute node, in the job folder: it takes job.lock (fd 9)
 * and becomes the supervisor, which holds the lock for as long as it lives, as on every node.
 * It waits for the lock (up to 30 s) rather than failing at once: until the supervisor runs,
 * every client probe takes a shared lock on job.lock for a moment (`gpuq_held`), and a batch
 * script starting just then (a probe's flock descheduled on a loaded machine) must not take the
 * probe for a running supervisor and end the job unstarted (a `lost` verdict for hello world).
 */
export const BATCH_SCRIPT = [
  '#!/bin/bash',
  '# gpuq: the Slurm batch script of one job (README, "Slurm"); run.sh is the supervisor.',
  'exec 9>>job.lock',
  'flock -x -w 30 9 || { echo "gpuq: job.lock stayed held for 30 s: the job is already running" >&2; exit 3; }',
  'exec bash ./run.sh </dev/null >>supervisor.log 2>&1',
  '',
].join('\n');

/**
 * sbatch in the job folder, then a short look (about 3 s at most) for the job to start: until
 * status.json says running, or squeue says it waits for a reason, or it ended. Exit 77 with
 * sbatch's stderr when sbatch refused. Prints sections `id`, `row` (squeue), `zone`, `status`.
 */
export function sbatchLines(args: readonly string[], lookS = 3): string[] {
  const m = (n: string) => sh(`${SLURM_MARK} ${n}`);
  const turns = Math.max(1, Math.round(lookS / 0.05));
  return [
    ': >>job.lock',
    `out=$(sbatch ${shWords(args)} 2>sbatch.err); rc=$?`,
    `id=$(printf '%s\\n' "$out" | tail -n 1 | cut -d';' -f1)`,
    `case $id in ''|*[!0-9]*) cat sbatch.err >&2; [ "$rc" = 0 ] && echo "sbatch printed no job id: $out" >&2; exit 77;; esac`,
    `echo ${m('id')}; echo "$id"`,
    `i=0; while [ "$i" -lt ${turns} ]; do st=; IFS= read -r st 2>/dev/null <status.json; ` +
      `case $st in *'"state":"running"'*|*'"state":"exited"'*) break;; esac; [ -e boundary.refused ] && break; ` +
      `if [ $((i % 5)) = 0 ]; then row=$(squeue -h -j "$id" -o '%T|%r' 2>/dev/null); ` +
      `case $row in 'PENDING|None'|'') ;; PENDING*) break;; RUNNING*|CONFIGURING*|COMPLETING*) ;; *) break;; esac; fi; ` +
      `sleep 0.05; i=$((i+1)); done`,
    // squeue's row only for a job that is not running yet (its queue place); a started one goes on at once.
    `echo ${m('row')}; case $st in *'"state":"running"'*|*'"state":"exited"'*) ;; *) squeue -h -j "$id" -o ${sh(SQUEUE_FORMAT)} 2>/dev/null | head -n 1;; esac`,
    `echo ${m('zone')}; date +%z`,
    `echo ${m('status')}; cat status.json 2>/dev/null`,
    'exit 0',
  ];
}

/**
 * What Slurm says of one job: its squeue row (any state, while slurmctld remembers it), the
 * partition's pending jobs while it is pending, and sacct's record once squeue forgot it. A
 * failing squeue prints its words in section `error` (slurmctld down), never a made-up answer.
 */
export function slurmQueryCommand(slurmId: string, dir: string | null): RemoteCommand {
  const m = (n: string) => sh(`${SLURM_MARK} ${n}`);
  const id = sh(slurmId);
  return {
    purpose: 'ask Slurm about the job',
    script: [
      READ_FUNCTIONS,
      `echo ${m('zone')}; date +%z`,
      `row=$(squeue -h -t all -j ${id} -o ${sh(SQUEUE_FORMAT)} 2>&1); rc=$?`,
      // An id slurmctld forgot (MinJobAge passed) is "Invalid job id": sacct may still know it.
      `if [ "$rc" != 0 ]; then case $row in *'Invalid job id'*) row=;; *) echo ${m('error')}; printf '%s\\n' "$row" | head -c 2000; exit 0;; esac; fi`,
      `echo ${m('row')}; printf '%s\\n' "$row" | head -n 1`,
      `case $row in *'|PENDING|'*|*'|REQUEUED|'*|*'|REQUEUE_HOLD|'*) p=$(printf '%s' "$row" | cut -d'|' -f3); ` +
        `echo ${m('pending')}; squeue -h -t PD -p "$p" -o ${sh(SQUEUE_FORMAT)} 2>/dev/null | head -n 100000;; esac`,
      `if [ -z "$row" ]; then echo ${m('acct')}; sacct -n -P -X -j ${id} -o ${sh(SACCT_FIELDS)} 2>/dev/null | head -n 20; fi`,
      // Whether gpuq's cancel was asked for in the folder (by this or another client).
      dir === null
        ? ''
        : `if cd -- ${shPath(dir)} 2>/dev/null; then echo ${m('folder')}; gpuq_reg cancel.requested && echo cancel; gpuq_reg status.json && echo status; fi`,
      'exit 0',
    ].join('\n'),
  };
}

/**
 * gpuq's cancel on Slurm: the folder's cancel.requested marker first, then a pending job is
 * removed with scancel, and a running one's supervisor gets SIGUSR1 through Slurm (on whichever
 * node it runs): it sends the job SIGTERM and SIGKILL after the grace period, as everywhere.
 */
export function slurmCancelCommand(slurmId: string, dir: string): RemoteCommand {
  const id = sh(slurmId);
  return {
    purpose: 'cancel the Slurm job',
    script: [
      READ_FUNCTIONS,
      `cd -- ${shPath(dir)} 2>/dev/null && { gpuq_reg cancel.requested || rm -f -- cancel.requested 2>/dev/null; timeout -s KILL 5 touch -- cancel.requested 2>/dev/null; }`,
      `scancel --state=PENDING ${id} 2>&1 | head -c 2000 >&2`,
      `scancel --batch --signal=USR1 --state=RUNNING ${id} 2>&1 | head -c 2000 >&2`,
      'exit 0',
    ].join('\n'),
  };
}

/** Ends a Slurm job outright (SIGTERM, then Slurm's KillWait and SIGKILL): a supervisor that did not answer. */
export function scancelCommand(slurmId: string): RemoteCommand {
  return { purpose: 'end the Slurm job', script: `scancel ${sh(slurmId)} 2>&1 | head -c 2000 >&2; exit 0` };
}

/** The partition's nodes (sinfo) and jobs (squeue), for `gpuq nodes`; Slurm's words in `error` when it fails. */
export function slurmPartitionCommand(partition: string | null): RemoteCommand {
  const m = (n: string) => sh(`${SLURM_MARK} ${n}`);
  const p = partition === null ? '' : ` -p ${sh(partition)}`;
  return {
    purpose: "read the Slurm partition's state",
    script: [
      `nodes=$(sinfo -h -N${p} -O ${sh(SINFO_FORMAT)} 2>&1); rc=$?`,
      `if [ "$rc" != 0 ]; then echo ${m('error')}; printf '%s\\n' "$nodes" | head -c 2000; exit 0; fi`,
      `echo ${m('nodes')}; printf '%s\\n' "$nodes" | head -n 10000`,
      `echo ${m('jobs')}; squeue -h${p} -o ${sh(SQUEUE_FORMAT)} 2>/dev/null | head -n 100000`,
      'exit 0',
    ].join('\n'),
  };
}

/** Splits a Slurm command's output into its sections. */
export function slurmSections(out: string): Map<string, string> {
  const found = new Map<string, string>();
  let name: string | null = null;
  let lines: string[] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith(`${SLURM_MARK} `)) {
      if (name !== null) found.set(name, lines.join('\n'));
      name = line.slice(SLURM_MARK.length + 1).trim();
      lines = [];
    } else if (name !== null) lines.push(line);
  }
  if (name !== null) found.set(name, lines.join('\n'));
  return found;
}
