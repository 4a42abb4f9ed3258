/**
 * The SSH transport (src/transport/ssh.ts) against a private sshd, one concern per file (split
 * from ssh-transport.test.ts); this one: exec, stream and upload: exit codes, stdin, hostile
 * scripts, channel limits, live chunks, abort killing the remote process group, uploads and their
 * modes.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh } from '../../src/transport/ssh.js';
import type { Transport } from '../../src/transport/transport.js';
import { remoteGone, sharedSshd, waitFor } from '../helpers/ssh-transport.js';

const ctx = sharedSshd();

describe('exec', () => {
  let t: Transport;
  beforeAll(async () => {
    t = await connectSsh(ctx.sshd.nodeConfig({ name: 'n-exec' }), ctx.opts());
  });
  afterAll(async () => t?.close());

  it('runs as the node user and returns exit codes, stdout and stderr separately', async () => {
    expect(t.node).toBe('n-exec');
    const r = await t.exec({ purpose: 'who', script: 'id -un; echo err >&2; exit 3' });
    expect(r).toEqual({ stdout: `${ctx.sshd.user}\n`, stderr: 'err\n', code: 3 });
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
    const script =
      `echo start\n${'# padding padding padding padding padding padding padding\n'.repeat(5000)}echo ` +
      `"end $((2+3))"\nexit 5`;
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
    t = await connectSsh(ctx.sshd.nodeConfig({ name: 'n-stream' }), ctx.opts());
  });
  afterAll(async () => t?.close());

  it('delivers chunks as they arrive, before the command ends', async () => {
    // The script waits (up to 30 s) for a gate that the test opens only once "one" has reached
    // it: a stream that delivered only at the end would print "late" instead of "two".
    const gatePath = join(ctx.work, 'stream-gate');
    const seen: Array<{ text: string; fd: 1 | 2 }> = [];
    const r = await t.stream(
      {
        purpose: 'tick',
        script:
          `echo one; echo warn >&2; i=0; while [ ! -e '${gatePath}' ] && [ $i -lt 600 ]; ` +
          `do sleep 0.05; i=$((i+1)); done; [ -e '${gatePath}' ] && echo two || echo late`,
      },
      {
        onStdout: (c) => {
          seen.push({ text: c.toString(), fd: 1 });
          if (c.toString().includes('one')) writeFileSync(gatePath, '');
        },
        onStderr: (c) => seen.push({ text: c.toString(), fd: 2 }),
      },
    );
    expect(r).toEqual({ stdout: 'one\ntwo\n', stderr: 'warn\n', code: 0 });
    expect(seen.find((s) => s.text.includes('one'))!.fd).toBe(1);
    expect(seen.find((s) => s.fd === 2)!.text).toBe('warn\n');
  });

  it('returns the script exit code and feeds its stdin', async () => {
    const r = await t.stream({ purpose: 'stdin', script: 'tr a-z A-Z; exit 4', stdin: 'hello\n' }, {});
    expect(r).toEqual({ stdout: 'HELLO\n', stderr: '', code: 4 });
  });

  it('on abort closes the channel and kills the remote process group', async () => {
    const ac = new AbortController();
    let out = '';
    const streamed = t.stream(
      { purpose: 'long', script: 'sleep 300 & c=$!; echo pid=$$ child=$c; wait' },
      { onStdout: (c) => (out += c.toString()), signal: ac.signal },
    );
    await waitFor(() => /pid=(\d+) child=(\d+)/.test(out), 'the script printing its pids');
    const m = /pid=(\d+) child=(\d+)/.exec(out)!;
    const [pid, child] = [Number(m[1]), Number(m[2])];
    expect(pid).toBeGreaterThan(1);
    // Both are alive before the abort.
    expect(
      (await t.exec({ purpose: 'alive', script: `[ -e /proc/${pid} ] && [ -e /proc/${child} ] && echo yes` })).stdout,
    ).toBe('yes\n');
    const t0 = Date.now();
    ac.abort();
    const r = await streamed;
    // Far below the 300 s the script would take: the abort ended it (generous for a loaded machine).
    expect(Date.now() - t0).toBeLessThan(10_000);
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
    await waitFor(() => /child=\d+/.test(out), 'the script printing its child pid');
    const child = Number(/child=(\d+)/.exec(out)![1]);
    const t0 = Date.now();
    ac.abort();
    await streamed;
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(await remoteGone(t, [child], 15_000)).toBe('');
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
    t = await connectSsh(ctx.sshd.nodeConfig({ name: 'n-up' }), ctx.opts());
    remoteDir = (await t.exec({ purpose: 'mktemp', script: 'mktemp -d' })).stdout.trim();
  });
  afterAll(async () => {
    if (remoteDir) await t?.exec({ purpose: 'rm', script: `rm -rf '${remoteDir}'` });
    await t?.close();
  });

  it('copies a file with spaces in its name, mode 0600 by default, reporting progress', async () => {
    const local = join(ctx.work, 'my program.py');
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
    const local = join(ctx.work, 'run.sh');
    await writeFile(local, '#!/bin/sh\necho hi\n');
    await t.exec({ purpose: 'pre', script: `mkdir -p ~/up && echo old > ~/up/run.sh && chmod 644 ~/up/run.sh` });
    await t.upload(local, '~/up/run.sh', { mode: 0o700 });
    const r = await t.exec({ purpose: 'check', script: `stat -c %a ~/up/run.sh && ~/up/run.sh && rm -rf ~/up` });
    expect(r.stdout).toBe('700\nhi\n');
  });

  it('uploads an empty file with the right mode', async () => {
    const local = join(ctx.work, 'empty');
    await writeFile(local, '');
    await t.upload(local, `${remoteDir}/empty`);
    expect((await t.exec({ purpose: 'check', script: `stat -c '%a %s' '${remoteDir}/empty'` })).stdout).toBe('600 0\n');
  });

  it('fails clearly when the node refuses the path', async () => {
    const local = join(ctx.work, 'x');
    await writeFile(local, 'x');
    await expect(t.upload(local, '/root/forbidden/x')).rejects.toThrow(
      /could not upload .* to \/root\/forbidden\/x on node n-up/,
    );
  });
});
