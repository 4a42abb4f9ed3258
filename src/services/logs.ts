/**
 * `gpuq logs`: a job's stdout and stderr, whole, tailed or followed until it ends. Following
 * resumes from the byte it reached after a dropped connection, so no line repeats or is lost.
 */
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import type { Job } from '../core/types.js';
import { fileSize, followFile, readLog } from '../node/protocol.js';
import type { AppContext } from './context.js';
import { findJob, nodeOf, refreshJobs } from './jobs.js';
import { withReconnect } from './reconnect.js';

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
  if (remote === null) throw new UserError(`job ${job.id} never started, so it has no logs.`, EXIT.noSuchJob, `See why with: gpuq show ${job.id}`);
  const node = nodeOf(ctx, job);
  await Promise.all(
    opts.streams.map(async (stream) => {
      const file = `${stream}.log` as const;
      let offset = 0;
      if (!opts.follow || opts.tail !== null) {
        const text = await withReconnect(ctx, node, (t) => readLog(t, remote.dir, file, opts.tail), { maxAttempts: opts.follow ? undefined : 1 });
        if (!opts.follow) {
          ctx.out.raw(stream, text);
          return;
        }
        ctx.out.raw(stream, text);
        offset = await withReconnect(ctx, node, (t) => fileSize(t, remote.dir, file));
      }
      await withReconnect(
        ctx,
        node,
        async (t) => {
          offset = await followFile(t, remote.dir, file, offset, (c) => ctx.out.raw(stream, c), signal);
        },
        { signal },
      );
    }),
  );
  const [fresh] = await refreshJobs(ctx, [await findJob(ctx, job.id)]);
  return fresh as Job;
}
