/**
 * The node link (services/reconnect.ts) over in-memory nodes: a dropped link is waited out and
 * the step resumed; what the transport marks not retryable, and a node's own answer, are not.
 */
import { describe, expect, it } from 'vitest';
import { NodeFaultError, NodeUnreachableError } from '../../src/core/errors.js';
import { probeJob } from '../../src/node/protocol.js';
import { openNodeLink } from '../../src/services/reconnect.js';
import { MemoryNode, memoryContext } from '../helpers/memory-transport.js';

describe('node link', () => {
  it('reconnects after a drop and runs the step again on the new connection', async () => {
    const n1 = new MemoryNode('n1');
    n1.dropOnce('read the job status', 'before');
    const { ctx } = memoryContext([n1]);
    const told: string[] = [];
    let back = 0;
    const link = openNodeLink(ctx, ctx.config.nodes.n1!, {
      onReconnecting: (why, inS) => told.push(`${why} / ${inS}`),
      onReconnected: () => back++,
    });
    try {
      const probe = await link.run((t) => probeJob(t, '/mem/n1/jobs/nothere'));
      expect(probe.missing).toBe(true);
    } finally {
      await link.close();
    }
    expect(told).toEqual(['connection lost during "read the job status" (dropped before the script ran) / 0.5']);
    expect(back).toBe(1);
    expect(n1.connects).toBe(2);
    expect(n1.ran).toEqual(['read the job status']);
  });

  it('gives up after maxAttempts and rejects with the last link error', async () => {
    const n1 = new MemoryNode('n1');
    n1.down = true;
    const { ctx } = memoryContext([n1]);
    const link = openNodeLink(ctx, ctx.config.nodes.n1!, { onReconnecting: () => undefined });
    const err = await link.run(async () => 1, { maxAttempts: 2 }).catch((e: unknown) => e);
    await link.close();
    expect(err).toBeInstanceOf(NodeUnreachableError);
    expect((err as NodeUnreachableError).cause_).toBe('connection refused on n1:22');
    expect(n1.connects).toBe(2);
  });

  it('does not retry what the transport marked not retryable (a refused key, failed authentication)', async () => {
    const n1 = new MemoryNode('n1');
    const { ctx } = memoryContext([n1]);
    let connects = 0;
    ctx.connect = async (node) => {
      connects++;
      throw new NodeUnreachableError(node.name, 'authentication failed for user gpuq', null, { retryable: false });
    };
    const told: string[] = [];
    const link = openNodeLink(ctx, ctx.config.nodes.n1!, { onReconnecting: (why) => told.push(why) });
    const err = await link.run(async () => 1).catch((e: unknown) => e);
    await link.close();
    expect(err).toBeInstanceOf(NodeUnreachableError);
    expect((err as NodeUnreachableError).retryable).toBe(false);
    expect(connects).toBe(1);
    expect(told).toEqual([]);
  });

  it("does not retry a node's own answer (a failing script is a NodeFaultError)", async () => {
    const n1 = new MemoryNode('n1');
    n1.faults.set('read the job status', { code: 1, stderr: 'disk I/O error\n' });
    const { ctx } = memoryContext([n1]);
    const link = openNodeLink(ctx, ctx.config.nodes.n1!, { onReconnecting: () => undefined });
    const err = await link.run((t) => probeJob(t, '/mem/n1/jobs/x')).catch((e: unknown) => e);
    await link.close();
    expect(err).toBeInstanceOf(NodeFaultError);
    expect((err as Error).message).toBe('on node n1, could not read the job status: disk I/O error');
    expect(n1.connects).toBe(1);
  });
});
