/**
 * `gpuq stats`: the ledger's jobs (live and archived) aggregated by core/stats.ts. No node is
 * reached: active jobs count as the ledger last knew them.
 */
import { computeStats, type Stats } from '../core/stats.js';
import type { AppContext } from './context.js';

/** The stats of the jobs created in the last `sinceS` seconds (null: every job). */
export async function jobStats(ctx: AppContext, sinceS: number | null): Promise<Stats> {
  const nowMs = ctx.now().getTime();
  return computeStats(await ctx.ledger.readAll(), { sinceMs: sinceS === null ? null : nowMs - sinceS * 1000, nowMs });
}
