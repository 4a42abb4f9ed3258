/**
 * `gpuq logs`: a job's stdout and stderr, whole, tailed or followed until it ends, over one
 * connection to its node. Logs are streamed, never held whole: each chunk is printed as it
 * comes, and the next is read only once our stdout took it (a 600 MiB log, or a slow pipe,
 * keeps gpuq's memory flat). Following counts every byte it has printed and resumes from there
 * after a dropped connection, so no line repeats or is lost.
 */
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import type { Job } from '../core/types.js';
import { followFile, probeJob, snapshotLog, streamLog } from '../node/protocol.js';
import type { AppContext } from './context.js';
import { untilSlurmRuns } from './slurm.js';
import { openJobLink, settle } from './job-link.js';
import { findJob } from './jobs.js';
import type { NodeLink } from './reconnect.js';

export type LogStream = 'stdout' | 'stderr';

export interface LogsOptions {
  follow: boolean;
  tail: number | null;
  streams: LogStream[];
}

/** Writes the job's logs to our stdout/stderr; with follow, returns once the job has ended. */
export async function showLogs(ctx: AppContext, id: string, opts: LogsOptions, signal?: AbortSignal): Promise<Job> {
  const job = await findJob(ctx, id);
  const remote = job.remote;
  if (remote === null)
    throw new UserError(
      `job ${job.id} never started, so it has no logs.`,
      EXIT.noSuchJob,
      `See why with: gpuq show ${job.id}`,
    );
  const link = openJobLink(ctx, job, { signal });
  try {
    if (!opts.follow) {
      // One stream after the other, each printed as it arrives (bounded by its size at the start).
      for (const s of opts.streams)
        await link.run((t) => streamLog(t, remote.dir, `${s}.log`, opts.tail, (c) => ctx.out.raw(s, c), signal), {
          maxAttempts: 1,
        });
      return job;
    }
    // A job Slurm still holds has no supervisor to follow yet.
    if (job.remote?.slurmJobId && (await untilSlurmRuns(ctx, job, link, signal)).state === 'done')
      return findJob(ctx, job.id);
    await followStreams(ctx, link, remote.dir, opts.streams, opts.tail, signal);
    const cur = await findJob(ctx, job.id);
    if (signal?.aborted || cur.state === 'done') return cur;
    // The follow ended with the job: record its verdict over the same connection.
    return await link.run(async (t) => settle(ctx, cur, await probeJob(t, remote.dir), t));
  } finally {
    await link.close();
  }
}

/**
 * Follows a job's logs until the job ends: each stream (from its last `tail` lines, or from its
 * start) to our stdout or stderr as it grows, with backpressure, resuming after a dropped link
 * from the last byte printed. `logs -f` and `wait --follow` both stream through this.
 */
export async function followStreams(
  ctx: AppContext,
  link: NodeLink,
  dir: string,
  streams: readonly LogStream[],
  tail: number | null,
  signal?: AbortSignal,
): Promise<void> {
  await Promise.all(
    streams.map(async (stream) => {
      const file = `${stream}.log` as const;
      let offset = 0;
      if (tail !== null) {
        const snap = await link.run((t) => snapshotLog(t, dir, file, tail));
        ctx.out.raw(stream, snap.text);
        offset = snap.size;
      }
      await link.run((t) =>
        followFile(
          t,
          dir,
          file,
          offset,
          (c) => {
            offset += c.length;
            return ctx.out.raw(stream, c);
          },
          signal,
        ),
      );
    }),
  );
}
