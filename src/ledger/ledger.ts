/**
 * The job ledger: a small live JSON file (lowdb) plus an append-only archive of finished jobs.
 * lowdb has no inter-process lock, so every read-modify-write holds a proper-lockfile lock,
 * which is recovered when its holder stops refreshing it (dead or hung) and is never held
 * across slow work (network, processes). Readers need no lock: writes are atomic renames.
 * lowdb only reads; every write goes through private-file.ts (0600 whatever the umask, never
 * through a link, a full disk a user error that leaves the previous version whole).
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { jobShapeProblem } from '../core/job-shape.js';
import { fillLimitsAddedLater } from '../core/limits.js';
import type { Job } from '../core/types.js';
import { appendPrivateFile, writeError, writePrivateFileAtomic } from './private-file.js';

interface LedgerData {
  version: 1;
  jobs: Job[];
}

/** Finished jobs kept in the live file; older ones move to the archive so writes stay cheap. */
export const LIVE_DONE_KEEP = 200;
/** A lock not refreshed for this long is taken over (its holder died or hung). */
const STALE_MS = 5000;
/** How long a command waits for a lock another live gpuq holds before giving up (exit 5). */
export const LOCK_WAIT_MS = 20_000;

export interface Ledger {
  readonly path: string;
  /** Jobs in the live file (all active ones and the newest finished ones). */
  readLive(): Promise<Job[]>;
  /** Every job ever recorded, live and archived, newest first. */
  readAll(): Promise<Job[]>;
  /** Read-modify-write under the lock. `fn` must be quick and pure: no I/O. */
  update<T>(fn: (jobs: Job[]) => { jobs: Job[]; result: T }): Promise<T>;
  /**
   * Read-modify-write of one job under the lock: `fn` gets the job (and every live job, to decide
   * against) and returns its next version; resolves with what was written. Rejects if the job is
   * not in the live file. `fn` must be quick and pure.
   */
  updateJob(id: string, fn: (job: Job, jobs: readonly Job[]) => Job): Promise<Job>;
  /**
   * Removes finished jobs from the ledger, live file and archive alike, under the lock (`gpuq
   * prune`); a job that is not finished is never removed. Resolves with the ids removed.
   */
  forget(ids: ReadonlySet<string>): Promise<string[]>;
}

class CorruptLedger extends Error {}

function parseLedger(text: string): LedgerData {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new CorruptLedger((e as Error).message);
  }
  if (typeof data !== 'object' || data === null || !Array.isArray((data as LedgerData).jobs)) {
    throw new CorruptLedger('it has no "jobs" list');
  }
  const jobs = (data as LedgerData).jobs as unknown[];
  jobs.forEach((job, i) => {
    fillLimitsAddedLater((job as { limits?: unknown } | null)?.limits);
    const problem = jobShapeProblem(job);
    if (problem) throw new CorruptLedger(`${jobLabel(job, `entry ${i + 1} of "jobs"`)}: ${problem}`);
  });
  return data as LedgerData;
}

/** "job 8ob83u8i" when the entry has a usable id, else `fallback`. */
function jobLabel(job: unknown, fallback: string): string {
  const id = (job as { id?: unknown } | null)?.id;
  return typeof id === 'string' && id !== '' ? `job ${id}` : fallback;
}

function corruptError(path: string, why: string): UserError {
  const bak = `${path}.bak`;
  const restore = existsSync(bak)
    ? `The last good copy is ${bak}: check it, then restore it with: cp '${bak}' '${path}'`
    : `No earlier copy exists; move the file aside (mv '${path}' '${path}.broken') to start a new ledger.`;
  return new UserError(
    `the ledger ${path} is unreadable or damaged (${why}); gpuq will not overwrite it.`,
    EXIT.ledger,
    restore,
  );
}

/** Opens (without reading) the ledger at `path`; the archive lives beside it. */
export function openLedger(path: string, opts: { lockWaitMs?: number } = {}): Ledger {
  const lockWaitMs = opts.lockWaitMs ?? LOCK_WAIT_MS;
  const archivePath = `${path.replace(/\.json$/, '')}.archive.jsonl`;
  const db = new Low<LedgerData>(
    new DataFile<LedgerData>(path, { parse: parseLedger, stringify: (d) => JSON.stringify(d) }),
    {
      version: 1,
      jobs: [],
    },
  );

  async function readLive(): Promise<Job[]> {
    try {
      await db.read();
    } catch (e) {
      if (e instanceof CorruptLedger) throw corruptError(path, e.message);
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'EACCES' || code === 'EPERM' || code === 'EIO') {
        throw new UserError(
          `the ledger ${path} cannot be read (${code}).`,
          EXIT.ledger,
          `Check that it is a file you can read and write: ls -l '${path}'`,
        );
      }
      throw e;
    }
    return db.data.jobs;
  }

  function readArchive(): Job[] {
    if (!existsSync(archivePath)) return [];
    const out: Job[] = [];
    readFileSync(archivePath, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.trim() === '') return;
        let job: unknown;
        try {
          job = JSON.parse(line);
        } catch {
          // A torn last line from a crash mid-append: the job is still in the live file.
          return;
        }
        fillLimitsAddedLater((job as { limits?: unknown } | null)?.limits);
        const problem = jobShapeProblem(job);
        if (problem) {
          throw new UserError(
            `the ledger archive ${archivePath} is damaged at line ${i + 1} (${jobLabel(job, 'a job')}: ${problem}).`,
            EXIT.ledger,
            `Fix or delete that line by hand (it is one job as JSON); gpuq only appends to this file.`,
          );
        }
        out.push(job as Job);
      });
    return out;
  }

  async function readAll(): Promise<Job[]> {
    const live = await readLive();
    const seen = new Set(live.map((j) => j.id));
    const all = [...live];
    for (const j of readArchive()) {
      if (!seen.has(j.id)) {
        seen.add(j.id);
        all.push(j);
      }
    }
    return all.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  }

  // Updates of this process run one at a time: the lock's wait (lockWaitMs) is for other
  // processes; a hundred updates at once here (`gpuq wait` of a hundred jobs) would otherwise
  // spend it queueing behind each other and fail with "locked for too long".
  let queue: Promise<unknown> = Promise.resolve();
  function update<T>(fn: (jobs: Job[]) => { jobs: Job[]; result: T }): Promise<T> {
    const run = queue.then(() => updateLocked(fn));
    queue = run.catch(() => undefined);
    return run;
  }

  async function updateLocked<T>(fn: (jobs: Job[]) => { jobs: Job[]; result: T }): Promise<T> {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (e) {
      throw writeError(e, dirname(path), 'the ledger folder');
    }
    let release: () => Promise<void>;
    try {
      // loaded here, not at import: read-only commands (list, show) never lock
      const { default: lockfile } = await import('proper-lockfile');
      release = await lockfile.lock(path, {
        realpath: false,
        stale: STALE_MS,
        update: 1000,
        // Tries up to 150 ms apart until lockWaitMs have passed (GPUQ_LOCK_WAIT, README).
        retries: {
          retries: Math.ceil(lockWaitMs / 10) + 10,
          maxRetryTime: lockWaitMs,
          factor: 1.3,
          minTimeout: 10,
          maxTimeout: 150,
          randomize: true,
        },
        onCompromised: () => {
          // Our lock went stale (we were stopped for > STALE_MS); the stamp check below
          // refuses to write over what the new holder wrote.
        },
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOCKED') {
        throw new UserError(
          `the ledger ${path} is locked by another gpuq process and has been for too long.`,
          EXIT.ledger,
          `If no other gpuq is running, remove the stale lock: rm -r '${path}.lock'`,
        );
      }
      throw writeError(e, `${path}.lock`, "the ledger's lock");
    }
    try {
      // The lock can be taken over from a holder stopped for > STALE_MS (Ctrl-Z): if the file
      // changed since we read it, someone else wrote meanwhile; apply `fn` again to their version.
      for (let attempt = 0; ; attempt++) {
        const seen = fileStamp(path);
        const { jobs: next, result } = fn(await readLive());
        if (fileStamp(path) !== seen) {
          if (attempt < 5) continue;
          throw new UserError(
            `the ledger ${path} kept changing under another gpuq process that took over its lock.`,
            EXIT.ledger,
            'Run the command again.',
          );
        }
        const { live, archived } = splitForArchive(next);
        if (archived.length > 0)
          appendPrivateFile(archivePath, archived.map((j) => `${JSON.stringify(j)}\n`).join(''), 'the ledger archive');
        backUp(path);
        const data: LedgerData = { version: 1, jobs: live };
        writePrivateFileAtomic(path, JSON.stringify(data), 'the ledger');
        db.data = data;
        return result;
      }
    } finally {
      await release().catch(() => undefined);
    }
  }

  function updateJob(id: string, fn: (job: Job, jobs: readonly Job[]) => Job): Promise<Job> {
    return update((jobs) => {
      const i = jobs.findIndex((j) => j.id === id);
      if (i < 0) throw new Error(`gpuq bug: job ${id} vanished from the ledger`);
      const next = fn(jobs[i] as Job, jobs);
      if (next === jobs[i]) return { jobs, result: next };
      const copy = [...jobs];
      copy[i] = next;
      return { jobs: copy, result: next };
    });
  }

  async function forget(ids: ReadonlySet<string>): Promise<string[]> {
    const gone = (j: Job) => ids.has(j.id) && j.state === 'done';
    return update((jobs) => {
      const removed = jobs.filter(gone).map((j) => j.id);
      // The archive is rewritten here, under the same lock (appends only happen inside update()):
      // the one write inside an update's function, harmless if it runs again (it is idempotent).
      const archived = readArchive();
      const kept = archived.filter((j) => !gone(j));
      if (kept.length !== archived.length) {
        for (const j of archived) if (gone(j) && !removed.includes(j.id)) removed.push(j.id);
        writePrivateFileAtomic(archivePath, kept.map((j) => `${JSON.stringify(j)}\n`).join(''), 'the ledger archive');
      }
      return { jobs: removed.length ? jobs.filter((j) => !gone(j)) : jobs, result: removed };
    });
  }

  return { path, readLive, readAll, update, updateJob, forget };
}

/** Keeps the version about to be replaced as PATH.bak (0600, written like the ledger itself). */
function backUp(path: string): void {
  let previous: Buffer;
  try {
    previous = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  writePrivateFileAtomic(`${path}.bak`, previous, "the ledger's backup");
}

/** Identity of the file's current version: every write replaces it (new inode) and changes its time. */
function fileStamp(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return 'none';
  }
}

/** Keeps active jobs and the newest LIVE_DONE_KEEP finished ones live; the rest go to the archive. */
export function splitForArchive(jobs: Job[]): { live: Job[]; archived: Job[] } {
  const done = jobs.filter((j) => j.state === 'done');
  if (done.length <= LIVE_DONE_KEEP) return { live: jobs, archived: [] };
  const byEnd = [...done].sort((a, b) => ((a.endedAt ?? a.createdAt) < (b.endedAt ?? b.createdAt) ? 1 : -1));
  const old = new Set(byEnd.slice(LIVE_DONE_KEEP).map((j) => j.id));
  return { live: jobs.filter((j) => !old.has(j.id)), archived: jobs.filter((j) => old.has(j.id)) };
}
