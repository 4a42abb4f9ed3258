/**
 * The SSH transport (src/transport/ssh.ts) against a private sshd, one concern per file (split
 * from ssh-transport.test.ts); this one: resolving a node through an ssh config (aliases,
 * HostKeyAlias, tokens, no ssh binary), keys and connection failures (exit 3), and ProxyJump.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh, isEncryptedKey } from '../../src/transport/ssh.js';
import { resolveNode } from '../../src/transport/ssh-resolve.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { closedPort, expectUnreachable, sharedSshd } from '../helpers/ssh-transport.js';

const ctx = sharedSshd();

describe('ssh config and connection failures', () => {
  it('resolves an alias from an ssh config file (HostName, User, Port, IdentityFile)', async () => {
    const node = ctx.sshd.nodeConfig({
      name: 'aliased',
      host: ctx.sshd.alias,
      port: null,
      user: null,
      identityFile: null,
    });
    const ep = await resolveNode(node, { sshConfigFile: ctx.sshd.sshConfigPath });
    expect(ep).toMatchObject({
      hostname: '127.0.0.1',
      port: ctx.sshd.port,
      user: ctx.sshd.user,
      identityFiles: [ctx.sshd.clientKeyPath],
      hostKeyName: '127.0.0.1',
    });
    await ctx.withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'id -un' })).stdout).toBe(`${ctx.sshd.user}\n`),
      node,
    );
  });

  it('looks a HostKeyAlias up bare, as OpenSSH records it, whatever the port', async () => {
    const cfg = join(ctx.work, 'ssh_config_alias');
    const kh = join(ctx.work, 'kh-alias');
    await writeFile(
      cfg,
      `Host aliased-key\n  HostName 127.0.0.1\n  Port ${ctx.sshd.port}\n` +
        `  User ${ctx.sshd.user}\n  IdentityFile ${ctx.sshd.clientKeyPath}\n` +
        `  HostKeyAlias gpu-node-7\n  UserKnownHostsFile /dev/null\n`,
    );
    const key = ctx.sshd.hostKeys[0]!;
    await writeFile(kh, `gpu-node-7 ${key.keyType} ${key.keyBase64}\n`);
    const node = ctx.sshd.nodeConfig({ host: 'aliased-key', port: null, user: null, identityFile: null });
    expect(await resolveNode(node, { sshConfigFile: cfg })).toMatchObject({
      hostKeyName: 'gpu-node-7',
      hostKeyPort: 22,
      port: ctx.sshd.port,
    });
    await ctx.withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'true' })).code).toBe(0),
      node,
      ctx.opts({ sshConfigFile: cfg, knownHostsPath: kh }),
    );
  });

  it('expands tokens in IdentityFile and lets explicit node fields override the ssh config', async () => {
    const cfg = join(ctx.work, 'ssh_config_tokens');
    await writeFile(
      cfg,
      `Host tok\n  HostName 127.0.0.1\n  Port 1\n  User nobody\n` +
        `  IdentityFile ${ctx.sshd.dir}/%r_key\n  IdentityFile ~/does-not-exist-%h\n` +
        `Host *\n  UserKnownHostsFile /dev/null\n`,
    );
    execFileSync('cp', [ctx.sshd.clientKeyPath, join(ctx.sshd.dir, `${ctx.sshd.user}_key`)]);
    const node = ctx.sshd.nodeConfig({ host: 'tok', port: ctx.sshd.port, user: ctx.sshd.user, identityFile: null });
    const ep = await resolveNode(node, { sshConfigFile: cfg });
    expect(ep).toMatchObject({
      port: ctx.sshd.port,
      user: ctx.sshd.user,
      identityFiles: [join(ctx.sshd.dir, `${ctx.sshd.user}_key`)],
    });
    await ctx.withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'true' })).code).toBe(0),
      node,
      ctx.opts({ sshConfigFile: cfg }),
    );
  });

  it('falls back to the node config as it is when there is no ssh binary', async () => {
    const node = ctx.sshd.nodeConfig({ name: 'nossh' });
    const ep = await resolveNode(node, { env: { PATH: '/nonexistent', HOME: ctx.work } });
    expect(ep).toMatchObject({
      hostname: '127.0.0.1',
      port: ctx.sshd.port,
      user: ctx.sshd.user,
      identityFiles: [ctx.sshd.clientKeyPath],
      jumps: [],
      proxyCommand: null,
    });
    expect(ep.userKnownHostsFiles).toEqual([join(ctx.work, '.ssh/known_hosts'), join(ctx.work, '.ssh/known_hosts2')]);
    const bare = await resolveNode(
      ctx.sshd.nodeConfig({ host: 'bare.example', port: null, user: null, identityFile: null }),
      { env: { PATH: '/nonexistent', HOME: ctx.work } },
    );
    expect(bare).toMatchObject({ hostname: 'bare.example', port: 22, identityFiles: [] });
  });

  it('skips a passphrase-protected key, and says so', async () => {
    const enc = join(ctx.work, 'enc_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-C', '', '-f', enc]);
    expect(isEncryptedKey(await readFile(enc))).toBe(true);
    expect(isEncryptedKey(await readFile(ctx.sshd.clientKeyPath))).toBe(false);
    const err = await expectUnreachable(
      connectSsh(ctx.sshd.nodeConfig({ identityFile: enc }), ctx.opts({ env: { ...process.env, SSH_AUTH_SOCK: '' } })),
    );
    expect(err.message).toContain(`${enc} (passphrase-protected: add it to ssh-agent)`);
  });

  it('fails with exit 3 when the key is not accepted', async () => {
    const err = await expectUnreachable(
      connectSsh(ctx.sshd.nodeConfig({ identityFile: ctx.sshd.unauthorizedKeyPath }), ctx.opts()),
    );
    expect(err.message).toContain(`authentication failed for user ${ctx.sshd.user}`);
  });

  it('fails fast with exit 3 on a closed port', async () => {
    const port = await closedPort();
    const t0 = Date.now();
    const err = await expectUnreachable(
      connectSsh(ctx.sshd.nodeConfig({ name: 'dead', port, connectTimeoutS: 30 }), ctx.opts()),
    );
    // Refused at once, not after the 30 s connect timeout (generous: `ssh -G` runs first).
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(err.message).toBe(`node dead is unreachable: connection refused on 127.0.0.1:${port}`);
  });

  it('times out within the connect timeout when the peer never speaks', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const t0 = Date.now();
      const err = await expectUnreachable(
        connectSsh(ctx.sshd.nodeConfig({ name: 'mute', port, connectTimeoutS: 10 }), ctx.opts()),
      );
      expect(Date.now() - t0).toBeGreaterThanOrEqual(9_500);
      expect(Date.now() - t0).toBeLessThan(25_000);
      expect(err.message).toContain('timed out after 10 s');
    } finally {
      silent.close();
    }
  });

  it('fails with exit 3 on a host name that does not resolve', async () => {
    const err = await expectUnreachable(connectSsh(ctx.sshd.nodeConfig({ host: 'no-such-host.invalid' }), ctx.opts()));
    expect(err.message).toContain('cannot resolve host name no-such-host.invalid');
  });
});

describe('ProxyJump', () => {
  let target: Sshd;
  /** Keys for both hops come from this ssh config (the jump spec names only user, host and port). */
  let cfg: string;
  beforeAll(async () => {
    target = await startSshd({ alias: 'gpuq-target' });
    cfg = join(ctx.work, 'ssh_config_jump');
    await writeFile(
      cfg,
      `Host 127.0.0.1\n  IdentityFile ${ctx.sshd.clientKeyPath}\n` +
        `  IdentityFile ${target.clientKeyPath}\n  IdentitiesOnly yes\n` +
        `  UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\n`,
    );
  });
  afterAll(async () => target?.cleanup());

  it('reaches the target through the jump host and verifies the target key under its own name', async () => {
    const jumpLog = ctx.sshd.log().length;
    const kh = join(ctx.work, 'kh-jump');
    await writeFile(kh, `${ctx.sshd.knownHostsLine('right')}\n${target.knownHostsLine('right')}\n`);
    const node = target.nodeConfig({ name: 'behind', jump: `${ctx.sshd.user}@127.0.0.1:${ctx.sshd.port}` });
    await ctx.withTransport(
      async (t) => {
        const r = await t.exec({ purpose: 'where', script: 'printf %s "$SSH_CONNECTION"' });
        // We landed on the target daemon, and the jump daemon logged us in on the way.
        expect(r.stdout.split(' ')[2]).toBe('127.0.0.1');
        expect(r.stdout.split(' ')[3]).toBe(String(target.port));
      },
      node,
      ctx.opts({ knownHostsPath: kh, sshConfigFile: cfg }),
    );
    expect(ctx.sshd.log().slice(jumpLog)).toMatch(new RegExp(`Accepted publickey for ${ctx.sshd.user}`));

    // Only the jump host's key on record: the target's is unknown, and the error names the target.
    const khJumpOnly = join(ctx.work, 'kh-jump-only');
    await writeFile(khJumpOnly, `${ctx.sshd.knownHostsLine('right')}\n`);
    const err = await expectUnreachable(connectSsh(node, ctx.opts({ knownHostsPath: khJumpOnly, sshConfigFile: cfg })));
    expect(err.message).toContain(`[127.0.0.1]:${target.port}`);
  });

  it('says which hop failed when the jump host is down', async () => {
    const port = await closedPort();
    const node = target.nodeConfig({ name: 'behind', jump: `${ctx.sshd.user}@127.0.0.1:${port}` });
    const err = await expectUnreachable(connectSsh(node, ctx.opts({ sshConfigFile: cfg })));
    expect(err.message).toContain(
      `jump host ${ctx.sshd.user}@127.0.0.1:${port}: connection refused on 127.0.0.1:${port}`,
    );
  });
});
