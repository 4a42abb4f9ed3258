/**
 * `gpuq cancel`: SIGTERM to the job's process group through its supervisor, SIGKILL after the
 * grace period, verdict `cancelled`.
 */
import type { Job } from '../core/types.js';
import { cancelledBeforeStart } from '../core/verdicts.js';
import { requestCancel } from '../node/protocol.js';
import type { AppContext } from './context.js';
import { openJobLink } from './job-link.js';
import { addNote, findJob, recordVerdict } from './jobs.js';
import { cancelSlurm, slurmIdOf } from './slurm.js';
import { waitJob } from './wait.js';

export interface CancelOutcome {
  job: Job;
  /** false when it had already ended before the cancel. */
  cancelled: boolean;
}

/** Cancels one job and waits until it has ended (at most its grace period and a little more). */
export async function cancelJob(ctx: AppContext, id: string): Promise<CancelOutcome> {
  const job = await findJob(ctx, id);
  if (job.state === 'done') return { job, cancelled: false };
  await addNote(ctx, job.id, 'cancel requested');
  if (job.remote === null) {
    const done = await recordVerdict(ctx, job.id, cancelledBeforeStart());
    return { job: done, cancelled: true };
  }
  const dir = job.remote.dir;
  // one connection asks for the cancel and then waits for the end
  const link = openJobLink(ctx, job);
  try {
    if (slurmIdOf(job) !== null) {
      const done = await cancelSlurm(ctx, job, link);
      return { job: done, cancelled: done.verdict?.class === 'cancelled' };
    }
    await link.run((t) => requestCancel(t, dir), { maxAttempts: 3 });
    const done = await waitJob(ctx, await findJob(ctx, job.id), undefined, link);
    return { job: done, cancelled: done.verdict?.class === 'cancelled' };
  } finally {
    await link.close();
  }
}
