/**
 * The SSH transport (src/transport/ssh.ts) against a private sshd, one concern per file (split
 * from ssh-transport.test.ts); this one: a node failing under a live connection: sshd killed
 * during a stream, a frozen sshd caught by keepalive, connecting again once the node is back.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeUnreachableError } from '../../src/core/errors.js';
import { connectSsh } from '../../src/transport/ssh.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { expectUnreachable, gate, sharedSshd, waitFor } from '../helpers/ssh-transport.js';

const ctx = sharedSshd();

describe('node failures', () => {
  let victim: Sshd;
  let kh: string;
  beforeAll(async () => {
    victim = await startSshd({ alias: 'gpuq-victim' });
    kh = join(ctx.work, 'kh-victim');
    await victim.writeKnownHosts(kh, 'right');
  });
  afterAll(async () => victim?.cleanup());

  it('sshd killed during a stream: rejects with NodeUnreachableError, the process survives', async () => {
    const t = await connectSsh(victim.nodeConfig({ name: 'victim' }), {
      knownHostsPath: kh,
      sshConfigFile: victim.sshConfigPath,
    });
    try {
      let out = '';
      const streamed = t.stream(
        { purpose: 'follow logs', script: 'while :; do echo tick; sleep 0.1; done' },
        { onStdout: (c) => (out += c) },
      );
      const caught = streamed.catch((e: unknown) => e);
      await waitFor(() => out.includes('tick'), 'the first tick');
      const started = join(ctx.work, 'slow-step-started');
      const execCaught = t
        .exec({ purpose: 'slow step', script: `touch '${started}'; sleep 30` })
        .catch((e: unknown) => e);
      await gate(started, 'the slow step starting');
      await victim.stop();
      const err = await caught;
      const execErr = await execCaught;
      expect(execErr).toBeInstanceOf(NodeUnreachableError);
      expect((execErr as Error).message).toMatch(/connection lost during "slow step"/);
      expect(err).toBeInstanceOf(NodeUnreachableError);
      expect((err as Error).message).toMatch(/node victim is unreachable: connection lost during "follow logs"/);
      // Later calls fail the same way instead of hanging or crashing.
      await expectUnreachable(t.exec({ purpose: 'after', script: 'true' }));
      await writeFile(join(ctx.work, 'lost-upload'), 'x');
      await expectUnreachable(t.upload(join(ctx.work, 'lost-upload'), 'x'));
    } finally {
      await t.close();
      await t.close();
    }
    await victim.start();
  });

  it('a stalled node (sshd frozen) is detected by keepalive, not a hang', async () => {
    const t = await connectSsh(victim.nodeConfig({ name: 'victim' }), {
      knownHostsPath: kh,
      sshConfigFile: victim.sshConfigPath,
      keepaliveIntervalMs: 300,
      keepaliveCountMax: 2,
    });
    try {
      const started = join(ctx.work, 'stalled-started');
      const streamed = t
        .stream({ purpose: 'wait', script: `touch '${started}'; sleep 60` }, {})
        .catch((e: unknown) => e);
      await gate(started, 'the remote sleep starting');
      victim.freeze();
      const t0 = Date.now();
      const err = await streamed;
      // Well before the 60 s sleep ends: keepalive (300 ms x 2) noticed, generous for a loaded machine.
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(err).toBeInstanceOf(NodeUnreachableError);
      expect((err as Error).message).toMatch(/connection lost/);
    } finally {
      victim.thaw();
      await t.close();
    }
  });

  it('connects again after the node comes back', async () => {
    await victim.restart();
    await ctx.withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo back' })).stdout).toBe('back\n'),
      victim.nodeConfig(),
      { knownHostsPath: kh, sshConfigFile: victim.sshConfigPath },
    );
  });
});
