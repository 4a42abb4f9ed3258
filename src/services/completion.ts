/**
 * `gpuq __complete KIND`: the names a completion script offers at Tab: job ids from the ledger
 * (newest first), node and competition names from the config. Read-only and quiet: it never
 * reaches a node, so a Tab press costs one local read.
 */
import type { DynamicKind } from '../core/completion.js';
import type { AppContext } from './context.js';

/** Most job ids offered: the newest ones, which are the ones people type. */
export const COMPLETION_JOB_LIMIT = 200;

/** The words for one kind, one per element, in the order a person wants them. */
export async function completionWords(ctx: AppContext, kind: DynamicKind): Promise<string[]> {
  if (kind === 'nodes') return Object.keys(ctx.config.nodes);
  if (kind === 'competitions') return Object.keys(ctx.config.competitions);
  const jobs = await ctx.ledger.readLive();
  return [...jobs]
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
    .slice(0, COMPLETION_JOB_LIMIT)
    .map((j) => j.id);
}
