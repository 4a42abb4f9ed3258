/**
 * Finding a job by id prefix. Kept apart from jobs.ts so that read commands load no more than
 * the ledger to answer.
 */
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { isIdLike, matchPrefix } from '../core/ids.js';
import type { Job } from '../core/types.js';
import type { AppContext } from './context.js';

/** Resolves an id or unambiguous prefix to a job, or fails with exit 4 listing candidates. */
export async function findJob(ctx: AppContext, prefix: string): Promise<Job> {
  if (!isIdLike(prefix))
    throw new UserError(`"${prefix}" is not a job id.`, EXIT.noSuchJob, 'Job ids are shown by `gpuq list`.');
  let m = matchPrefix(await ctx.ledger.readLive(), prefix);
  if (m.kind !== 'one' || m.item.id !== prefix) {
    const all = matchPrefix(await ctx.ledger.readAll(), prefix);
    if (all.kind !== 'none') m = all;
  }
  if (m.kind === 'one') return m.item;
  if (m.kind === 'none')
    throw new UserError(`no job matches "${prefix}".`, EXIT.noSuchJob, 'See `gpuq list --all` for every job.');
  const shown = m.items
    .slice(0, 10)
    .map((j) => `${j.id} (${j.name})`)
    .join(', ');
  throw new UserError(`"${prefix}" matches ${m.items.length} jobs: ${shown}.`, EXIT.noSuchJob, 'Type more of the id.');
}
