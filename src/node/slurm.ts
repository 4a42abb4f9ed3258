/**
 * Slurm's side of the job protocol: runs the scripts of slurm-commands.ts through a Transport and
 * turns their output into data (core/slurm parses what Slurm printed).
 */
import { readFile, stat } from 'node:fs/promises';
import { sh } from '../core/quote.js';
import { NodeFaultError, UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import {
  type PartitionSummary,
  parseSacct,
  parseSinfo,
  parseSqueue,
  pendingPosition,
  type SlurmJobView,
  type SqueueRow,
  slurmMessage,
  slurmUnreachable,
  summarizePartition,
} from '../core/slurm.js';
import type { StatusFile } from '../core/types.js';
import type { RemoteCommand, Transport } from '../transport/transport.js';
import { type InlineFile, setupJobCommand, unpackCommand } from './commands.js';
import { gradeInlineFiles, type LaunchFiles } from './protocol.js';
import { INLINE_PROGRAM_MAX } from './protocol.js';
import {
  BATCH_SCRIPT,
  sbatchLines,
  scancelCommand,
  slurmCancelCommand,
  slurmPartitionCommand,
  slurmQueryCommand,
  slurmSections,
} from './slurm-commands.js';

/** What sbatch and the first look after it said. */
export interface SlurmLaunch {
  dir: string;
  slurmJobId: string;
  /** squeue's row right after the look (null: already gone from squeue). */
  row: SqueueRow | null;
  zone: string;
  /** status.json when the supervisor had started within the look. */
  status: StatusFile | null;
}

/** Slurm refused or could not be reached: exit 3 when its controller is unreachable, 2 when it refused the job. */
function slurmError(node: string, what: string, stderr: string): UserError {
  const said = slurmMessage(stderr);
  return slurmUnreachable(said)
    ? new UserError(
        `node ${node}: Slurm could not be reached to ${what}: ${said}`,
        EXIT.unreachable,
        'Check that slurmctld runs (`sinfo` on the login node), then submit again.',
      )
    : new UserError(
        `node ${node}: Slurm refused to ${what}: ${said}`,
        EXIT.usage,
        'Check the node\'s "partition", "account", "qos" and "sbatchArgs" in the config against `sinfo` and `sacctmgr show assoc`.',
      );
}

/**
 * Writes the job folder (program, supervisor, sampler, batch script) and submits it with sbatch
 * in one round trip for a small program; a larger one or --include files are uploaded between.
 * Throws a UserError quoting Slurm when sbatch refuses or slurmctld is down.
 */
export async function launchSlurm(t: Transport, f: LaunchFiles, sbatch: readonly string[]): Promise<SlurmLaunch> {
  const templates: InlineFile[] = [
    { name: 'monitor.py', content: f.monitor, mode: 0o600 },
    { name: 'run.sh', content: f.wrapper, mode: 0o700 },
    { name: 'slurm.sh', content: BATCH_SCRIPT, mode: 0o700 },
    ...gradeInlineFiles(f),
  ];
  const { size } = await stat(f.localProgram);
  const mode = f.executable ? 0o700 : 0o600;
  const inline = size <= INLINE_PROGRAM_MAX && !f.bundle;
  const files = inline
    ? [{ name: f.programName, content: await readFile(f.localProgram), mode } as InlineFile, ...templates]
    : templates;
  const setup = setupJobCommand(f.dir, files, false);
  const submit = ['set +e', ...sbatchLines(sbatch)].join('\n');
  const cmd: RemoteCommand = inline
    ? { purpose: 'submit the job to Slurm', script: setup.script, stdin: `${setup.stdin}${submit}\n` }
    : setup;
  let r = await t.exec(cmd);
  if (r.code !== 0 && r.code !== 77) {
    const why = r.stderr.trim().split('\n').slice(-3).join(' ').trim() || `exit code ${r.code}`;
    throw new NodeFaultError(t.node, `on node ${t.node}, could not ${cmd.purpose}: ${why}`);
  }
  const nl = r.stdout.indexOf('\n');
  const dir = (nl < 0 ? r.stdout : r.stdout.slice(0, nl)).trim();
  if (!inline) {
    if (f.bundle) {
      const u = await t.send(unpackCommand(dir, f.bundle.unpackScript, f.bundle.maxBytes), f.bundle.source());
      if (u.code !== 0) {
        const why = u.stderr.trim().split('\n').slice(-2).join(' ').trim() || `exit code ${u.code}`;
        throw new NodeFaultError(t.node, `on node ${t.node}, could not write the uploaded files: ${why}`);
      }
    } else await t.upload(f.localProgram, `${dir}/${f.programName}`, { mode, onProgress: f.onProgress });
    r = await t.exec({ purpose: 'submit the job to Slurm', script: `cd -- ${sh(dir)} || exit 3\n${submit}` });
  } else f.onProgress?.(size, size);
  if (r.code === 77) throw slurmError(t.node, 'take the job', r.stderr);
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n').slice(-3).join(' ').trim() || `exit code ${r.code}`;
    throw new NodeFaultError(t.node, `on node ${t.node}, could not submit the job to Slurm: ${why}`);
  }
  const s = slurmSections(r.stdout);
  const id = (s.get('id') ?? '').trim();
  if (!/^\d{1,12}$/.test(id)) throw new NodeFaultError(t.node, `on node ${t.node}, sbatch printed no job id`);
  let status: StatusFile | null = null;
  try {
    const text = (s.get('status') ?? '').trim();
    status = text ? (JSON.parse(text) as StatusFile) : null;
  } catch {
    status = null;
  }
  return {
    dir,
    slurmJobId: id,
    row: parseSqueue(s.get('row') ?? '')[0] ?? null,
    zone: (s.get('zone') ?? '').trim(),
    status,
  };
}

/** What one look at a Slurm job found: Slurm's view, and the job folder's markers. */
export interface SlurmLook {
  view: SlurmJobView;
  /** gpuq's cancel was asked for (cancel.requested in the folder). */
  cancelAsked: boolean;
  /** The supervisor wrote status.json. */
  statusWritten: boolean;
}

/**
 * Asks Slurm about a job (squeue, the partition's pending jobs, sacct). Slurm's controller not
 * answering is a NodeFaultError quoting it: a job is never judged on a silence.
 */
export async function lookAtSlurmJob(t: Transport, slurmId: string, dir: string | null): Promise<SlurmLook> {
  const r = await t.exec(slurmQueryCommand(slurmId, dir));
  if (r.code !== 0)
    throw new NodeFaultError(t.node, `on node ${t.node}, could not ask Slurm about job ${slurmId} (exit ${r.code})`);
  const s = slurmSections(r.stdout);
  const err = s.get('error');
  if (err !== undefined)
    throw new NodeFaultError(
      t.node,
      `on node ${t.node}, Slurm did not answer about job ${slurmId}: ${slurmMessage(err)}`,
    );
  const row = parseSqueue(s.get('row') ?? '').find((x) => x.id === slurmId) ?? null;
  const pending = parseSqueue(s.get('pending') ?? '');
  const folder = (s.get('folder') ?? '').split('\n');
  return {
    view: {
      row,
      acct: row ? null : parseSacct(s.get('acct') ?? '', slurmId),
      position: row ? pendingPosition(slurmId, pending) : null,
      zone: (s.get('zone') ?? '').trim(),
    },
    cancelAsked: folder.includes('cancel'),
    statusWritten: folder.includes('status'),
  };
}

/** gpuq cancel on Slurm (slurmCancelCommand): scancel while pending, SIGUSR1 to the supervisor once running. */
export async function cancelSlurmJob(t: Transport, slurmId: string, dir: string): Promise<void> {
  const r = await t.exec(slurmCancelCommand(slurmId, dir));
  if (r.code !== 0) throw new NodeFaultError(t.node, `on node ${t.node}, could not cancel Slurm job ${slurmId}`);
  if (slurmUnreachable(r.stderr)) throw slurmError(t.node, `cancel job ${slurmId}`, r.stderr);
}

/** scancel outright: for a supervisor that did not end after gpuq's cancel and its grace. */
export async function endSlurmJob(t: Transport, slurmId: string): Promise<void> {
  await t.exec(scancelCommand(slurmId));
}

/** The partition's nodes, GPUs and jobs (sinfo, squeue); throws a UserError quoting Slurm when it cannot say. */
export async function readPartition(t: Transport, partition: string | null): Promise<PartitionSummary> {
  const r = await t.exec(slurmPartitionCommand(partition));
  const s = slurmSections(r.stdout);
  const err = s.get('error');
  if (r.code !== 0 || err !== undefined) throw slurmError(t.node, 'show the partition', err ?? r.stderr);
  return summarizePartition(partition, parseSinfo(s.get('nodes') ?? ''), parseSqueue(s.get('jobs') ?? ''));
}
