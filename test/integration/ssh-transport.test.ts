import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeConfig } from '../../src/config/types.js';
import { NodeUnreachableError } from '../../src/core/errors.js';
import { connectSsh, isEncryptedKey, type SshConnectOptions } from '../../src/transport/ssh.js';
import { resolveNode } from '../../src/transport/ssh-resolve.js';
import type { Transport } from '../../src/transport/transport.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

let sshd: Sshd;
let work: string;
/** known_hosts with the daemon's right key, shared by the tests that are not about host keys. */
let goodKnownHosts: string;

beforeAll(async () => {
  sshd = await startSshd({ hostKeys: ['ed25519', 'ecdsa'] });
  work = await mkdtemp(join(tmpdir(), 'gpuq-ssh-test-'));
  goodKnownHosts = join(work, 'known_hosts');
  await sshd.writeKnownHosts(goodKnownHosts, 'right');
});

afterAll(async () => {
  await sshd?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

function opts(extra: Partial<SshConnectOptions> = {}): SshConnectOptions {
  return { knownHostsPath: goodKnownHosts, sshConfigFile: sshd.sshConfigPath, ...extra };
}

async function withTransport<T>(
  fn: (t: Transport) => Promise<T>,
  node?: NodeConfig,
  o?: SshConnectOptions,
): Promise<T> {
  const t = await connectSsh(node ?? sshd.nodeConfig(), o ?? opts());
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

async function expectUnreachable(p: Promise<unknown>): Promise<NodeUnreachableError> {
  const err = await p.then(
    () => {
      throw new Error('expected a NodeUnreachableError, but it succeeded');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NodeUnreachableError);
  expect((err as NodeUnreachableError).exitCode).toBe(3);
  return err as NodeUnreachableError;
}

/** Waits until none of the pids is alive on the node (gone, or a zombie awaiting its reaper). */
async function remoteGone(t: Transport, pids: number[], withinMs = 3000): Promise<string> {
  const deadline = Date.now() + withinMs;
  let alive = '';
  while (Date.now() < deadline) {
    const r = await t.exec({
      purpose: 'check pids',
      script: `${pids
        .map(
          (p) => `s=$(sed 's/.*) //' /proc/${p}/stat 2>/dev/null | cut -c1); [ -n "$s" ] && [ "$s" != Z ] && echo ${p}`,
        )
        .join('; ')}; true`,
    });
    alive = r.stdout.trim();
    if (alive === '') return '';
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return alive;
}

describe('exec', () => {
  let t: Transport;
  beforeAll(async () => {
    t = await connectSsh(sshd.nodeConfig({ name: 'n-exec' }), opts());
  });
  afterAll(async () => t?.close());

  it('runs as the node user and returns exit codes, stdout and stderr separately', async () => {
    expect(t.node).toBe('n-exec');
    const r = await t.exec({ purpose: 'who', script: 'id -un; echo err >&2; exit 3' });
    expect(r).toEqual({ stdout: `${sshd.user}\n`, stderr: 'err\n', code: 3 });
    expect((await t.exec({ purpose: 'ok', script: 'true' })).code).toBe(0);
    expect((await t.exec({ purpose: 'max', script: 'exit 255' })).code).toBe(255);
  });

  it('reports a death by signal as 128+N', async () => {
    expect((await t.exec({ purpose: 'kill self', script: 'kill -KILL $$' })).code).toBe(137);
    expect((await t.exec({ purpose: 'term self', script: 'kill -TERM $$' })).code).toBe(143);
  });

  it('feeds stdin (text and binary) and keeps output untrimmed', async () => {
    const r = await t.exec({ purpose: 'cat', script: 'cat', stdin: '  line one\nline two\n\n' });
    expect(r.stdout).toBe('  line one\nline two\n\n');
    const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const h = await t.exec({ purpose: 'hash', script: 'sha256sum | cut -d" " -f1', stdin: bin });
    expect(h.stdout.trim()).toBe(createHash('sha256').update(bin).digest('hex'));
    // No stdin: the script sees EOF at once instead of hanging.
    expect((await t.exec({ purpose: 'no stdin', script: 'cat; echo done' })).stdout).toBe('done\n');
  });

  it('passes hostile scripts through untouched (quotes, $, backticks, newlines, unicode)', async () => {
    const script = [
      `x='it'"'"'s'; printf '%s\\n' "$x"`,
      `printf '%s\\n' "double \\"quoted\\" \\$HOME \\\`not run\\\` \\\\ back"`,
      `printf '%s\\n' 'single $HOME ` + '`x`' + ` !bang ; | & > <'`,
      `echo "ünïcødé — ✓"`,
      `a=(one 'two three'); printf '[%s]' "\${a[@]}"; echo`,
      `cat <<'EOF'\nheredoc $HOME 'q' "d"\nEOF`,
    ].join('\n');
    const local = execFileSync('bash', ['-c', script], {
      encoding: 'utf8',
      env: { HOME: '/nowhere', PATH: process.env.PATH },
    });
    const r = await t.exec({ purpose: 'hostile', script: `HOME=/nowhere\n${script}` });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(local);
    expect(r.stdout).toContain(`it's`);
    expect(r.stdout).toContain('`not run`');
  });

  it('runs a script too long for one command-line argument', async () => {
    const script = `echo start\n${'# padding padding padding padding padding padding padding\n'.repeat(5000)}echo "end $((2+3))"\nexit 5`;
    expect(script.length).toBeGreaterThan(200_000);
    expect(await t.exec({ purpose: 'long', script })).toEqual({ stdout: 'start\nend 5\n', stderr: '', code: 5 });
  });

  it('runs many commands at once on one connection (channels capped under MaxSessions)', async () => {
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) => t.exec({ purpose: `n${i}`, script: `sleep 0.1; echo ${i}` })),
    );
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 24 }, (_, i) => String(i)));
  });
});

describe('stream', () => {
  let t: Transport;
  beforeAll(async () => {
    t = await connectSsh(sshd.nodeConfig({ name: 'n-stream' }), opts());
  });
  afterAll(async () => t?.close());

  it('delivers chunks as they arrive, before the command ends', async () => {
    const seen: Array<{ at: number; text: string; fd: 1 | 2 }> = [];
    const start = Date.now();
    const r = await t.stream(
      { purpose: 'tick', script: 'echo one; echo warn >&2; sleep 1; echo two' },
      {
        onStdout: (c) => seen.push({ at: Date.now() - start, text: c.toString(), fd: 1 }),
        onStderr: (c) => seen.push({ at: Date.now() - start, text: c.toString(), fd: 2 }),
      },
    );
    const end = Date.now() - start;
    expect(r).toEqual({ stdout: 'one\ntwo\n', stderr: 'warn\n', code: 0 });
    const first = seen.find((s) => s.text.includes('one'))!;
    expect(first.fd).toBe(1);
    expect(end - first.at).toBeGreaterThan(700);
    expect(seen.find((s) => s.fd === 2)!.text).toBe('warn\n');
  });

  it('returns the script exit code and feeds its stdin', async () => {
    const r = await t.stream({ purpose: 'stdin', script: 'tr a-z A-Z; exit 4', stdin: 'hello\n' }, {});
    expect(r).toEqual({ stdout: 'HELLO\n', stderr: '', code: 4 });
  });

  it('on abort closes the channel and kills the remote process group', async () => {
    const ac = new AbortController();
    let out = '';
    const pids = new Promise<number[]>((resolve) => {
      const started = Date.now();
      const poll = setInterval(() => {
        const m = /pid=(\d+) child=(\d+)/.exec(out);
        if (m || Date.now() - started > 5000) {
          clearInterval(poll);
          resolve(m ? [Number(m[1]), Number(m[2])] : []);
        }
      }, 20);
    });
    const streamed = t.stream(
      { purpose: 'long', script: 'sleep 300 & c=$!; echo pid=$$ child=$c; wait' },
      { onStdout: (c) => (out += c.toString()), signal: ac.signal },
    );
    const [pid, child] = await pids;
    expect(pid).toBeGreaterThan(1);
    // Both are alive before the abort.
    expect(
      (await t.exec({ purpose: 'alive', script: `[ -e /proc/${pid} ] && [ -e /proc/${child} ] && echo yes` })).stdout,
    ).toBe('yes\n');
    const t0 = Date.now();
    ac.abort();
    const r = await streamed;
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(r.code).toBe(143);
    expect(await remoteGone(t, [pid!, child!])).toBe('');
    // The connection is still fine afterwards.
    expect((await t.exec({ purpose: 'after', script: 'echo ok' })).stdout).toBe('ok\n');
  });

  it('on abort also ends a process group that ignores SIGTERM (SIGKILL follows)', async () => {
    const ac = new AbortController();
    let out = '';
    const streamed = t.stream(
      { purpose: 'stubborn', script: 'trap "" TERM; sleep 300 & echo child=$!; wait; wait' },
      { onStdout: (c) => (out += c.toString()), signal: ac.signal },
    );
    while (!/child=\d+/.test(out)) await new Promise((r) => setTimeout(r, 20));
    const child = Number(/child=(\d+)/.exec(out)![1]);
    const t0 = Date.now();
    ac.abort();
    await streamed;
    expect(Date.now() - t0).toBeLessThan(3500);
    expect(await remoteGone(t, [child], 8000)).toBe('');
  });

  it('keeps only a tail of a long stream in its result; the handler gets everything', async () => {
    let received = 0;
    const r = await t.stream(
      { purpose: 'big', script: 'head -c 3000000 /dev/zero | tr "\\0" a' },
      { onStdout: (c) => (received += c.length) },
    );
    expect(received).toBe(3_000_000);
    expect(r.stdout.length).toBe(1024 * 1024);
    expect(r.code).toBe(0);
  });

  it('resolves at once for a signal that is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await t.stream({ purpose: 'never', script: 'echo ran' }, { signal: ac.signal });
    expect(r.stdout).toBe('');
  });
});

describe('upload', () => {
  let t: Transport;
  let remoteDir: string;
  beforeAll(async () => {
    t = await connectSsh(sshd.nodeConfig({ name: 'n-up' }), opts());
    remoteDir = (await t.exec({ purpose: 'mktemp', script: 'mktemp -d' })).stdout.trim();
  });
  afterAll(async () => {
    if (remoteDir) await t?.exec({ purpose: 'rm', script: `rm -rf '${remoteDir}'` });
    await t?.close();
  });

  it('copies a file with spaces in its name, mode 0600 by default, reporting progress', async () => {
    const local = join(work, 'my program.py');
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
    await writeFile(local, data);
    const progress: Array<[number, number]> = [];
    const remote = `${remoteDir}/job one/my program.py`;
    await t.upload(local, remote, { onProgress: (d, total) => progress.push([d, total]) });
    const r = await t.exec({
      purpose: 'check',
      script: `f='${remote}'; stat -c '%a %s' "$f" && sha256sum < "$f" | cut -d' ' -f1`,
    });
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      `600 ${data.length}`,
      createHash('sha256').update(data).digest('hex'),
    ]);
    expect(progress.at(-1)).toEqual([data.length, data.length]);
    expect(progress.length).toBeGreaterThan(1);
  });

  it('applies the given mode, also to a file that already existed, and takes ~/ paths', async () => {
    const local = join(work, 'run.sh');
    await writeFile(local, '#!/bin/sh\necho hi\n');
    await t.exec({ purpose: 'pre', script: `mkdir -p ~/up && echo old > ~/up/run.sh && chmod 644 ~/up/run.sh` });
    await t.upload(local, '~/up/run.sh', { mode: 0o700 });
    const r = await t.exec({ purpose: 'check', script: `stat -c %a ~/up/run.sh && ~/up/run.sh && rm -rf ~/up` });
    expect(r.stdout).toBe('700\nhi\n');
  });

  it('uploads an empty file with the right mode', async () => {
    const local = join(work, 'empty');
    await writeFile(local, '');
    await t.upload(local, `${remoteDir}/empty`);
    expect((await t.exec({ purpose: 'check', script: `stat -c '%a %s' '${remoteDir}/empty'` })).stdout).toBe('600 0\n');
  });

  it('fails clearly when the node refuses the path', async () => {
    const local = join(work, 'x');
    await writeFile(local, 'x');
    await expect(t.upload(local, '/root/forbidden/x')).rejects.toThrow(
      /could not upload .* to \/root\/forbidden\/x on node n-up/,
    );
  });
});

describe('host keys', () => {
  it('connects when known_hosts holds the right key', async () => {
    const kh = join(work, 'kh-right');
    await sshd.writeKnownHosts(kh, 'right');
    await withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo ok' })).stdout).toBe('ok\n'),
      undefined,
      opts({ knownHostsPath: kh }),
    );
  });

  it('connects when only another key type is on record (negotiation restricted to it)', async () => {
    const kh = join(work, 'kh-ecdsa');
    await sshd.writeKnownHosts(kh, 'right', 'ecdsa');
    await withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo ok' })).code).toBe(0),
      undefined,
      opts({ knownHostsPath: kh }),
    );
  });

  it('refuses a changed key loudly, even with accept-new, naming the file and line', async () => {
    const kh = join(work, 'kh-wrong');
    await writeFile(kh, `# first line\n${sshd.knownHostsLine('wrong')}\n`);
    for (const acceptNewHostKey of [false, true]) {
      const err = await expectUnreachable(
        connectSsh(sshd.nodeConfig({ name: 'gpu7' }), opts({ knownHostsPath: kh, acceptNewHostKey })),
      );
      expect(err.message).toMatch(/^HOST KEY FOR node gpu7 CHANGED/);
      expect(err.message).toMatch(/possible man-in-the-middle/);
      expect(err.message).toContain(`${kh} line 2`);
      expect(err.hint).toContain(`remove line 2 from ${kh}`);
    }
    expect(await readFile(kh, 'utf8')).toBe(`# first line\n${sshd.knownHostsLine('wrong')}\n`);
  });

  it('refuses a revoked key', async () => {
    const kh = join(work, 'kh-revoked');
    await writeFile(
      kh,
      `${sshd.knownHostsLine('right')}\n@revoked * ${sshd.knownHostsLine('right').split(' ').slice(1).join(' ')}\n`,
    );
    const err = await expectUnreachable(connectSsh(sshd.nodeConfig(), opts({ knownHostsPath: kh })));
    expect(err.message).toMatch(/REVOKED/);
  });

  it('refuses an unknown host, naming it and its fingerprint, with the ways to trust it', async () => {
    const kh = join(work, 'kh-none');
    await sshd.writeKnownHosts(kh, 'none');
    const err = await expectUnreachable(connectSsh(sshd.nodeConfig({ name: 'gpu9' }), opts({ knownHostsPath: kh })));
    const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${sshd.hostKeys[0]!.path}.pub`], {
      encoding: 'utf8',
    }).split(' ')[1]!;
    expect(err.message).toContain('node gpu9');
    expect(err.message).toContain(`[127.0.0.1]:${sshd.port}`);
    expect(err.message).toContain(fp);
    expect(err.hint).toContain('--accept-new-host-key');
    expect(err.hint).toContain('"acceptNewHostKey": true');
    expect(err.hint).toContain(sshd.knownHostsLine('right'));
    expect(await readFile(kh, 'utf8')).toBe('');
  });

  it('with accept-new records an unknown key (0600 file in a new 0700 folder), then trusts it', async () => {
    const kh = join(work, 'fresh-state', 'gpuq', 'known_hosts');
    await withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo ok' })).stdout).toBe('ok\n'),
      sshd.nodeConfig({ acceptNewHostKey: true }),
      opts({ knownHostsPath: kh }),
    );
    expect(await readFile(kh, 'utf8')).toBe(`${sshd.knownHostsLine('right')}\n`);
    expect((await stat(kh)).mode & 0o777).toBe(0o600);
    expect((await stat(join(work, 'fresh-state', 'gpuq'))).mode & 0o777).toBe(0o700);
    // Next time, without accept-new, the recorded key is trusted and nothing more is written.
    await withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo again' })).stdout).toBe('again\n'),
      sshd.nodeConfig(),
      opts({ knownHostsPath: kh }),
    );
    expect((await readFile(kh, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('reads ~/.ssh-style user known_hosts files from the ssh config too', async () => {
    const kh = join(work, 'kh-empty-own');
    await writeFile(kh, '');
    await sshd.writeKnownHosts(join(sshd.dir, 'user_known_hosts'), 'right');
    try {
      await withTransport(
        async (t) => expect((await t.exec({ purpose: 'x', script: 'true' })).code).toBe(0),
        undefined,
        opts({ knownHostsPath: kh }),
      );
    } finally {
      await rm(join(sshd.dir, 'user_known_hosts'), { force: true });
    }
  });
});

describe('ssh config and connection failures', () => {
  it('resolves an alias from an ssh config file (HostName, User, Port, IdentityFile)', async () => {
    const node = sshd.nodeConfig({ name: 'aliased', host: sshd.alias, port: null, user: null, identityFile: null });
    const ep = await resolveNode(node, { sshConfigFile: sshd.sshConfigPath });
    expect(ep).toMatchObject({
      hostname: '127.0.0.1',
      port: sshd.port,
      user: sshd.user,
      identityFiles: [sshd.clientKeyPath],
      hostKeyName: '127.0.0.1',
    });
    await withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'id -un' })).stdout).toBe(`${sshd.user}\n`),
      node,
    );
  });

  it('looks a HostKeyAlias up bare, as OpenSSH records it, whatever the port', async () => {
    const cfg = join(work, 'ssh_config_alias');
    const kh = join(work, 'kh-alias');
    await writeFile(
      cfg,
      `Host aliased-key\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${sshd.clientKeyPath}\n  HostKeyAlias gpu-node-7\n  UserKnownHostsFile /dev/null\n`,
    );
    const key = sshd.hostKeys[0]!;
    await writeFile(kh, `gpu-node-7 ${key.keyType} ${key.keyBase64}\n`);
    const node = sshd.nodeConfig({ host: 'aliased-key', port: null, user: null, identityFile: null });
    expect(await resolveNode(node, { sshConfigFile: cfg })).toMatchObject({
      hostKeyName: 'gpu-node-7',
      hostKeyPort: 22,
      port: sshd.port,
    });
    await withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'true' })).code).toBe(0),
      node,
      opts({ sshConfigFile: cfg, knownHostsPath: kh }),
    );
  });

  it('expands tokens in IdentityFile and lets explicit node fields override the ssh config', async () => {
    const cfg = join(work, 'ssh_config_tokens');
    await writeFile(
      cfg,
      `Host tok\n  HostName 127.0.0.1\n  Port 1\n  User nobody\n  IdentityFile ${sshd.dir}/%r_key\n  IdentityFile ~/does-not-exist-%h\nHost *\n  UserKnownHostsFile /dev/null\n`,
    );
    execFileSync('cp', [sshd.clientKeyPath, join(sshd.dir, `${sshd.user}_key`)]);
    const node = sshd.nodeConfig({ host: 'tok', port: sshd.port, user: sshd.user, identityFile: null });
    const ep = await resolveNode(node, { sshConfigFile: cfg });
    expect(ep).toMatchObject({ port: sshd.port, user: sshd.user, identityFiles: [join(sshd.dir, `${sshd.user}_key`)] });
    await withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'true' })).code).toBe(0),
      node,
      opts({ sshConfigFile: cfg }),
    );
  });

  it('falls back to the node config as it is when there is no ssh binary', async () => {
    const node = sshd.nodeConfig({ name: 'nossh' });
    const ep = await resolveNode(node, { env: { PATH: '/nonexistent', HOME: work } });
    expect(ep).toMatchObject({
      hostname: '127.0.0.1',
      port: sshd.port,
      user: sshd.user,
      identityFiles: [sshd.clientKeyPath],
      jumps: [],
      proxyCommand: null,
    });
    expect(ep.userKnownHostsFiles).toEqual([join(work, '.ssh/known_hosts'), join(work, '.ssh/known_hosts2')]);
    const bare = await resolveNode(
      sshd.nodeConfig({ host: 'bare.example', port: null, user: null, identityFile: null }),
      { env: { PATH: '/nonexistent', HOME: work } },
    );
    expect(bare).toMatchObject({ hostname: 'bare.example', port: 22, identityFiles: [] });
  });

  it('skips a passphrase-protected key, and says so', async () => {
    const enc = join(work, 'enc_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-C', '', '-f', enc]);
    expect(isEncryptedKey(await readFile(enc))).toBe(true);
    expect(isEncryptedKey(await readFile(sshd.clientKeyPath))).toBe(false);
    const err = await expectUnreachable(
      connectSsh(sshd.nodeConfig({ identityFile: enc }), opts({ env: { ...process.env, SSH_AUTH_SOCK: '' } })),
    );
    expect(err.message).toContain(`${enc} (passphrase-protected: add it to ssh-agent)`);
  });

  it('fails with exit 3 when the key is not accepted', async () => {
    const err = await expectUnreachable(
      connectSsh(sshd.nodeConfig({ identityFile: sshd.unauthorizedKeyPath }), opts()),
    );
    expect(err.message).toContain(`authentication failed for user ${sshd.user}`);
  });

  it('fails fast with exit 3 on a closed port', async () => {
    const port = await closedPort();
    const t0 = Date.now();
    const err = await expectUnreachable(
      connectSsh(sshd.nodeConfig({ name: 'dead', port, connectTimeoutS: 3 }), opts()),
    );
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(err.message).toBe(`node dead is unreachable: connection refused on 127.0.0.1:${port}`);
  });

  it('times out within the connect timeout when the peer never speaks', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const t0 = Date.now();
      const err = await expectUnreachable(
        connectSsh(sshd.nodeConfig({ name: 'mute', port, connectTimeoutS: 1 }), opts()),
      );
      expect(Date.now() - t0).toBeLessThan(2500);
      expect(err.message).toContain('timed out after 1 s');
    } finally {
      silent.close();
    }
  });

  it('fails with exit 3 on a host name that does not resolve', async () => {
    const err = await expectUnreachable(connectSsh(sshd.nodeConfig({ host: 'no-such-host.invalid' }), opts()));
    expect(err.message).toContain('cannot resolve host name no-such-host.invalid');
  });
});

describe('ProxyJump', () => {
  let target: Sshd;
  /** Keys for both hops come from this ssh config (the jump spec names only user, host and port). */
  let cfg: string;
  beforeAll(async () => {
    target = await startSshd({ alias: 'gpuq-target' });
    cfg = join(work, 'ssh_config_jump');
    await writeFile(
      cfg,
      `Host 127.0.0.1\n  IdentityFile ${sshd.clientKeyPath}\n  IdentityFile ${target.clientKeyPath}\n  IdentitiesOnly yes\n  UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\n`,
    );
  });
  afterAll(async () => target?.cleanup());

  it('reaches the target through the jump host and verifies the target key under its own name', async () => {
    const jumpLog = sshd.log().length;
    const kh = join(work, 'kh-jump');
    await writeFile(kh, `${sshd.knownHostsLine('right')}\n${target.knownHostsLine('right')}\n`);
    const node = target.nodeConfig({ name: 'behind', jump: `${sshd.user}@127.0.0.1:${sshd.port}` });
    await withTransport(
      async (t) => {
        const r = await t.exec({ purpose: 'where', script: 'printf %s "$SSH_CONNECTION"' });
        // We landed on the target daemon, and the jump daemon logged us in on the way.
        expect(r.stdout.split(' ')[2]).toBe('127.0.0.1');
        expect(r.stdout.split(' ')[3]).toBe(String(target.port));
      },
      node,
      opts({ knownHostsPath: kh, sshConfigFile: cfg }),
    );
    expect(sshd.log().slice(jumpLog)).toMatch(new RegExp(`Accepted publickey for ${sshd.user}`));

    // Only the jump host's key on record: the target's is unknown, and the error names the target.
    const khJumpOnly = join(work, 'kh-jump-only');
    await writeFile(khJumpOnly, `${sshd.knownHostsLine('right')}\n`);
    const err = await expectUnreachable(connectSsh(node, opts({ knownHostsPath: khJumpOnly, sshConfigFile: cfg })));
    expect(err.message).toContain(`[127.0.0.1]:${target.port}`);
  });

  it('says which hop failed when the jump host is down', async () => {
    const port = await closedPort();
    const node = target.nodeConfig({ name: 'behind', jump: `${sshd.user}@127.0.0.1:${port}` });
    const err = await expectUnreachable(connectSsh(node, opts({ sshConfigFile: cfg })));
    expect(err.message).toContain(`jump host ${sshd.user}@127.0.0.1:${port}: connection refused on 127.0.0.1:${port}`);
  });
});

describe('node failures', () => {
  let victim: Sshd;
  let kh: string;
  beforeAll(async () => {
    victim = await startSshd({ alias: 'gpuq-victim' });
    kh = join(work, 'kh-victim');
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
      while (!out.includes('tick')) await new Promise((r) => setTimeout(r, 20));
      const execCaught = t.exec({ purpose: 'slow step', script: 'sleep 5' }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 100));
      await victim.stop();
      const err = await caught;
      const execErr = await execCaught;
      expect(execErr).toBeInstanceOf(NodeUnreachableError);
      expect((execErr as Error).message).toMatch(/connection lost during "slow step"/);
      expect(err).toBeInstanceOf(NodeUnreachableError);
      expect((err as Error).message).toMatch(/node victim is unreachable: connection lost during "follow logs"/);
      // Later calls fail the same way instead of hanging or crashing.
      await expectUnreachable(t.exec({ purpose: 'after', script: 'true' }));
      await writeFile(join(work, 'lost-upload'), 'x');
      await expectUnreachable(t.upload(join(work, 'lost-upload'), 'x'));
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
      const streamed = t.stream({ purpose: 'wait', script: 'sleep 30' }, {}).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      victim.freeze();
      const t0 = Date.now();
      const err = await streamed;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(err).toBeInstanceOf(NodeUnreachableError);
      expect((err as Error).message).toMatch(/connection lost/);
    } finally {
      victim.thaw();
      await t.close();
    }
  });

  it('connects again after the node comes back', async () => {
    await victim.restart();
    await withTransport(
      async (t) => expect((await t.exec({ purpose: 'x', script: 'echo back' })).stdout).toBe('back\n'),
      victim.nodeConfig(),
      { knownHostsPath: kh, sshConfigFile: victim.sshConfigPath },
    );
  });
});

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
