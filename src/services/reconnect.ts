/**
 * A command's one connection to a node, kept up across drops: a job never depends on the
 * connection, so `wait`, `logs -f` and `watch` say they are reconnecting, back off, and resume.
 * Steps that run at once on the same node share the connection and the backoff.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable } from '../core/errors.js';
import type { NodeConfig } from '../config/types.js';
import type { Transport } from '../transport/transport.js';
import { connectBounded } from './connect.js';
import type { AppContext } from './context.js';

/** Backoff before reconnect attempt `n` (0-based), in seconds: 0.5, 1, 2, 4, 8, then 10. */
export function backoffS(n: number): number {
  return Math.min(10, 0.5 * 2 ** n);
}

export interface LinkOptions {
  /** Aborting stops retrying: the pending step rejects with the last connection error. */
  signal?: AbortSignal;
  /** Told before each pause (default: a note on stderr). */
  onReconnecting?: (why: string, inS: number) => void;
  /** Told once the node answers again after a drop (default: a note on stderr). */
  onReconnected?: () => void;
  /** A connection the command already has (submit's): used first, closed with the link. */
  initial?: Transport;
}

/** One node's connection for the length of a command, re-opened when it drops. */
export interface NodeLink {
  readonly node: NodeConfig;
  /**
   * Runs `step` on the connection until it resolves. A dropped link or a failed connect is
   * reported, waited out with backoff and retried (at most `maxAttempts` tries in all, default
   * without end); any other error is thrown at once: one the transport marked not retryable
   * (a refused host key, failed authentication) or the node's own answer (NodeFaultError).
   */
  run<T>(step: (t: Transport) => Promise<T>, opts?: { maxAttempts?: number }): Promise<T>;
  /** Ends the connection. */
  close(): Promise<void>;
}

/** Opens (lazily) a command's connection to `node`, each connect bounded by its timeout; see NodeLink. */
export function openNodeLink(ctx: AppContext, node: NodeConfig, opts: LinkOptions = {}): NodeLink {
  let current: Promise<Transport> | null = null;
  let failures = 0;
  let pause: Promise<void> | null = null;
  let interrupted = false;
  let closed = false;
  let initial = opts.initial ?? null;

  const connection = (): Promise<Transport> => {
    if (!current) {
      const first = initial;
      initial = null;
      const p = (first ? Promise.resolve(first) : connectBounded(ctx, node)).then((t) => {
        failures = 0;
        if (interrupted) {
          interrupted = false;
          if (opts.onReconnected) opts.onReconnected();
          else ctx.out.info(`node ${node.name}: reconnected`);
        }
        return t;
      });
      p.catch(() => undefined);
      current = p;
    }
    return current;
  };

  const drop = (p: Promise<Transport>) => {
    if (current !== p) return;
    current = null;
    p.then((t) => t.close()).catch(() => undefined);
  };

  const backoff = (why: string): Promise<void> => {
    if (!pause) {
      const wait = backoffS(failures++);
      interrupted = true;
      if (opts.onReconnecting) opts.onReconnecting(why, wait);
      else ctx.out.info(`node ${node.name}: ${why}; reconnecting in ${wait} s`);
      pause = sleep(wait * 1000, undefined, { signal: opts.signal })
        .catch(() => undefined)
        .finally(() => {
          pause = null;
        });
    }
    return pause;
  };

  return {
    node,
    async run<T>(step: (t: Transport) => Promise<T>, o: { maxAttempts?: number } = {}): Promise<T> {
      for (let attempt = 0; ; attempt++) {
        if (closed) throw new Error(`gpuq bug: node ${node.name} used after its link was closed`);
        const p = connection();
        try {
          return await step(await p);
        } catch (e) {
          if (!isRetryable(e)) throw e;
          drop(p);
          if (opts.signal?.aborted) throw e;
          if (o.maxAttempts !== undefined && attempt + 1 >= o.maxAttempts) throw e;
          await backoff(e.cause_);
          if (opts.signal?.aborted) throw e;
        }
      }
    },
    async close(): Promise<void> {
      closed = true;
      const p = current;
      current = null;
      if (p) await p.then((t) => t.close()).catch(() => undefined);
    },
  };
}
