/**
 * Opening a node's connection within its connect timeout: the one way services connect. The
 * node link (reconnect.ts), submit's candidate search, `nodes`, diagnose and the list refresh
 * come through here; only connectBounded calls ctx.connect.
 */
import { NodeUnreachableError } from '../core/errors.js';
import type { NodeConfig } from '../config/types.js';
import type { Transport } from '../transport/transport.js';
import type { AppContext } from './context.js';

/** Rejects after `ms` unless `p` settles first; a late transport is closed. */
export function bounded<T>(p: Promise<T>, ms: number, onLate: (v: T) => void, why: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  p.then(
    (v) => {
      if (late) onLate(v);
    },
    () => undefined,
  );
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        reject(why());
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Connects to a node within its connect timeout, counted from now: resolving the host, every
 * ProxyJump hop, the handshake and the login together.
 */
export function connectBounded(ctx: AppContext, node: NodeConfig): Promise<Transport> {
  const ms = node.connectTimeoutS * 1000;
  return bounded(
    ctx.connect(node),
    ms,
    (t) => void t.close().catch(() => undefined),
    () =>
      new NodeUnreachableError(
        node.name,
        `timed out after ${node.connectTimeoutS} s connecting${node.host ? ` to ${node.host}` : ''}`,
        'check that the node is up and reachable (VPN, firewall), or raise "connectTimeout" for it',
      ),
  );
}
