/**
 * The SSH transport (src/transport/ssh.ts) against a private sshd, one concern per file (split
 * from ssh-transport.test.ts); this one: host keys against known_hosts: the right key, another key
 * type on record, a changed, revoked or unknown key, accept-new, user known_hosts files named by
 * the ssh config.
 */
import { execFileSync } from 'node:child_process';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectSsh } from '../../src/transport/ssh.js';
import { expectUnreachable, sharedSshd } from '../helpers/ssh-transport.js';

const ctx = sharedSshd();

describe('host keys', () => {
  it('connects when known_hosts holds the right key', async () => {
    const kh = join(ctx.work, 'kh-right');
    await ctx.sshd.writeKnownHosts(kh, 'right');
    await ctx.withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo ok' })).stdout).toBe('ok\n'),
      undefined,
      ctx.opts({ knownHostsPath: kh }),
    );
  });

  it('connects when only another key type is on record (negotiation restricted to it)', async () => {
    const kh = join(ctx.work, 'kh-ecdsa');
    await ctx.sshd.writeKnownHosts(kh, 'right', 'ecdsa');
    await ctx.withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo ok' })).code).toBe(0),
      undefined,
      ctx.opts({ knownHostsPath: kh }),
    );
  });

  it('refuses a changed key loudly, even with accept-new, naming the file and line', async () => {
    const kh = join(ctx.work, 'kh-wrong');
    await writeFile(kh, `# first line\n${ctx.sshd.knownHostsLine('wrong')}\n`);
    for (const acceptNewHostKey of [false, true]) {
      const err = await expectUnreachable(
        connectSsh(ctx.sshd.nodeConfig({ name: 'gpu7' }), ctx.opts({ knownHostsPath: kh, acceptNewHostKey })),
      );
      expect(err.message).toMatch(/^HOST KEY FOR node gpu7 CHANGED/);
      expect(err.message).toMatch(/possible man-in-the-middle/);
      expect(err.message).toContain(`${kh} line 2`);
      expect(err.hint).toContain(`remove line 2 from ${kh}`);
    }
    expect(await readFile(kh, 'utf8')).toBe(`# first line\n${ctx.sshd.knownHostsLine('wrong')}\n`);
  });

  it('refuses a revoked key', async () => {
    const kh = join(ctx.work, 'kh-revoked');
    await writeFile(
      kh,
      `${ctx.sshd.knownHostsLine('right')}\n@revoked ` +
        `* ${ctx.sshd.knownHostsLine('right').split(' ').slice(1).join(' ')}\n`,
    );
    const err = await expectUnreachable(connectSsh(ctx.sshd.nodeConfig(), ctx.opts({ knownHostsPath: kh })));
    expect(err.message).toMatch(/REVOKED/);
  });

  it('refuses an unknown host, naming it and its fingerprint, with the ways to trust it', async () => {
    const kh = join(ctx.work, 'kh-none');
    await ctx.sshd.writeKnownHosts(kh, 'none');
    const err = await expectUnreachable(
      connectSsh(ctx.sshd.nodeConfig({ name: 'gpu9' }), ctx.opts({ knownHostsPath: kh })),
    );
    const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${ctx.sshd.hostKeys[0]!.path}.pub`], {
      encoding: 'utf8',
    }).split(' ')[1]!;
    expect(err.message).toContain('node gpu9');
    expect(err.message).toContain(`[127.0.0.1]:${ctx.sshd.port}`);
    expect(err.message).toContain(fp);
    expect(err.hint).toContain('--accept-new-host-key');
    expect(err.hint).toContain('"acceptNewHostKey": true');
    expect(err.hint).toContain(ctx.sshd.knownHostsLine('right'));
    expect(await readFile(kh, 'utf8')).toBe('');
  });

  it('with accept-new records an unknown key (0600 file in a new 0700 folder), then trusts it', async () => {
    const kh = join(ctx.work, 'fresh-state', 'gpuq', 'known_hosts');
    await ctx.withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo ok' })).stdout).toBe('ok\n'),
      ctx.sshd.nodeConfig({ acceptNewHostKey: true }),
      ctx.opts({ knownHostsPath: kh }),
    );
    expect(await readFile(kh, 'utf8')).toBe(`${ctx.sshd.knownHostsLine('right')}\n`);
    expect((await stat(kh)).mode & 0o777).toBe(0o600);
    expect((await stat(join(ctx.work, 'fresh-state', 'gpuq'))).mode & 0o777).toBe(0o700);
    // Next time, without accept-new, the recorded key is trusted and nothing more is written.
    await ctx.withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo again' })).stdout).toBe('again\n'),
      ctx.sshd.nodeConfig(),
      ctx.opts({ knownHostsPath: kh }),
    );
    expect((await readFile(kh, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('reads ~/.ssh-style user known_hosts files from the ssh config too', async () => {
    const kh = join(ctx.work, 'kh-empty-own');
    await writeFile(kh, '');
    await ctx.sshd.writeKnownHosts(join(ctx.sshd.dir, 'user_known_hosts'), 'right');
    try {
      await ctx.withTransport(
        async (t) => expect((await t.exec({ purpose: 'x', script: 'true' })).code).toBe(0),
        undefined,
        ctx.opts({ knownHostsPath: kh }),
      );
    } finally {
      await rm(join(ctx.sshd.dir, 'user_known_hosts'), { force: true });
    }
  });
});
