/**
 * Runs a step against a node, reconnecting with backoff when the link drops: a job never
 * depends on the connection, so `wait`, `logs -f` and `watch` just resume.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeUnreachableError } from '../core/errors.js';
import type { NodeConfig } from '../config/types.js';
import type { Transport } from '../transport/transport.js';
import type { AppContext } from './context.js';

/** Backoff before reconnect attempt `n` (0-based), in seconds: 0.5, 1, 2, 4, 8, then 10. */
export function backoffS(n: number): number {
  return Math.min(10, 0.5 * 2 ** n);
}

/**
 * Calls `step` with a connected transport until it resolves. Connection failures and drops are
 * reported on stderr and retried; any other error is thrown. `maxAttempts` bounds the retries
 * (default: forever, until the user interrupts).
 */
export async function withReconnect<T>(
  ctx: AppContext,
  node: NodeConfig,
  step: (t: Transport) => Promise<T>,
  opts: { signal?: AbortSignal; maxAttempts?: number; onReconnecting?: (why: string, inS: number) => void } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let t: Transport | null = null;
    try {
      t = await ctx.connect(node);
      const result = await step(t);
      return result;
    } catch (e) {
      if (!(e instanceof NodeUnreachableError)) throw e;
      if (opts.signal?.aborted) throw e;
      if (opts.maxAttempts !== undefined && attempt + 1 >= opts.maxAttempts) throw e;
      const wait = backoffS(attempt);
      if (opts.onReconnecting) opts.onReconnecting(e.cause_, wait);
      else ctx.out.info(`node ${node.name}: ${e.cause_}; reconnecting in ${wait} s`);
      await sleep(wait * 1000, undefined, { signal: opts.signal }).catch(() => undefined);
      if (opts.signal?.aborted) throw e;
    } finally {
      await t?.close().catch(() => undefined);
    }
  }
}
