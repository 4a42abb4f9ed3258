/**
 * gpuq end to end against real OpenSSH daemons on loopback, logged in as an unprivileged
 * user: the real binary and real supervisors on two "nodes"; host keys right, wrong, unknown
 * and hashed; an ssh config alias; ProxyJump through a second daemon; `gpuq nodes`.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, gpuq, gpuqJson, makeHome, writeProgram, type Home } from '../helpers/cli.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import type { Job } from '../../src/core/types.js';

let a: Sshd;
let b: Sshd;
let prog: string;
const homes: Home[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([startSshd({ alias: 'node-a' }), startSshd({ alias: 'node-b' })]);
  prog = await writeProgram(
    'hi.py',
    'import os, sys\nprint("out", os.environ["GPUQ_JOB_ID"])\nprint("err line", file=sys.stderr)\n',
  );
});
afterAll(async () => {
  await Promise.all(homes.map((h) => h.cleanup()));
  await Promise.all([a?.cleanup(), b?.cleanup()]);
});

/** A GPUQ_HOME with these nodes; gpuq's own known_hosts holds `knownHosts` lines. */
async function home(nodes: Record<string, unknown>, knownHosts: string[], env: NodeJS.ProcessEnv = {}): Promise<Home> {
  const h = await makeHome({ nodes }, { GPUQ_SSH_CONFIG: a.sshConfigPath, ...env });
  homes.push(h);
  await writeFile(join(h.dir, 'known_hosts'), knownHosts.map((l) => `${l}\n`).join(''));
  return h;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const fingerprint = (s: Sshd) =>
  execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${s.hostKeys[0]!.path}.pub`], { encoding: 'utf8' }).split(
    ' ',
  )[1]!;

describe('submit → wait → logs → diagnose on two nodes', () => {
  it('runs a job on each node, reads its output back, keeps the job folder private', async () => {
    const h = await home({ a: a.configEntry(), b: b.configEntry() }, [
      a.knownHostsLine('right'),
      b.knownHostsLine('right'),
    ]);
    const ids: string[] = [];
    const subs = await Promise.all(['a', 'b'].map((node) => gpuq(h, ['submit', prog, '--node', node, '--wait'])));
    for (const r of subs) {
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.code, r.stderr).toBe(0);
      ids.push(r.stdout.split('\n')[0]!);
    }
    for (const [i, node] of ['a', 'b'].entries()) {
      const id = ids[i]!;
      const logs = await gpuq(h, ['logs', id]);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toBe(`out ${id}\n`);
      expect(logs.stderr).toBe('err line\n');
      const job = await gpuqJson<Job>(h, ['show', id]);
      expect(job.node).toBe(node);
      expect(job.verdict?.class).toBe('succeeded');
      // 0700 folder, 0600 program, owned by the node user, under the node's workdir
      const st = execFileSync('stat', ['-c', '%a %U', job.remote!.dir, `${job.remote!.dir}/work/hi.py`], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n');
      expect(st).toEqual([`700 ${a.user}`, `600 ${a.user}`]);
      expect(job.remote!.dir).toContain(`gpuq-${(node === 'a' ? a : b).port}/jobs/${id}`);
    }
    const d = await gpuq(h, ['diagnose', ids[1]!]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/succeeded/);
  });

  it('without --node picks the node with fewer running gpuq jobs, and wait takes jobs on both', async () => {
    const h = await home({ a: a.configEntry(), b: b.configEntry() }, [
      a.knownHostsLine('right'),
      b.knownHostsLine('right'),
    ]);
    // Both jobs run until the test opens the gate (at most 60 s), so the first is still running
    // when the second is placed. The node user reads the gate: its folder is 0755.
    const gateDir = await mkdtemp(join(tmpdir(), 'gpuq-gate-'));
    await chmod(gateDir, 0o755);
    const gate = join(gateDir, 'open');
    const slow = await writeProgram(
      'slow.py',
      `import os, time\nfor _ in range(1200):\n` +
        `    if os.path.exists(${JSON.stringify(gate)}):\n        break\n` +
        `    time.sleep(0.05)\nprint("done")\n`,
    );
    let first: Job;
    let second: Job;
    try {
      first = await gpuqJson<Job>(h, ['submit', slow]);
      second = await gpuqJson<Job>(h, ['submit', slow]);
    } finally {
      await writeFile(gate, '');
    }
    expect(new Set([first.node, second.node])).toEqual(new Set(['a', 'b']));
    const w = await gpuq(h, ['wait', first.id, second.id]);
    await rm(gateDir, { recursive: true, force: true });
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout.match(/succeeded/g)).toHaveLength(2);
  });
  it('uploads a program over the inline limit through SFTP, byte for byte, mode 0600', async () => {
    const h = await home({ a: a.configEntry() }, [a.knownHostsLine('right')]);
    const big = await writeProgram('big.py', `${'# padding line for the upload\n'.repeat(8000)}print("big ok")\n`);
    const r = await gpuq(h, ['submit', big, '--node', 'a', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/uploading/); // no progress bar without a terminal
    const job = JSON.parse(r.stdout) as Job;
    const remote = `${job.remote!.dir}/work/big.py`;
    expect(execFileSync('stat', ['-c', '%a %s', remote], { encoding: 'utf8' }).trim()).toBe(
      `600 ${(await readFile(big)).length}`,
    );
    expect(execFileSync('cmp', [big, remote], { encoding: 'utf8' })).toBe('');
    expect((await gpuq(h, ['logs', job.id])).stdout).toBe('big ok\n');
  });
  it('shows upload progress for a program over 8 MiB when stderr is a terminal (tmux)', async () => {
    const h = await home({ a: a.configEntry() }, [a.knownHostsLine('right')]);
    const big = await writeProgram('huge.py', `${`${'#'.repeat(1023)}\n`.repeat(9 * 1024)}print("huge ok")\n`);
    const socket = `gpuq-ssh-test-${process.pid}`;
    const tmux = (...args: string[]) =>
      execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    const envs = Object.entries({ GPUQ_HOME: h.dir, GPUQ_SSH_CONFIG: a.sshConfigPath, NO_COLOR: '1' })
      .map(([k, v]) => `${k}=${shq(v)}`)
      .join(' ');
    tmux(
      'new-session',
      '-d',
      '-x',
      '150',
      '-y',
      '20',
      `env ${envs} ${shq(process.execPath)} ${shq(BIN)} submit ${shq(big)} --node a -q; echo "rc=$?"; sleep 30`,
    );
    try {
      let screen = '';
      // A look every 200 ms (each execs a tmux client), for at most 60 s.
      for (let i = 0; i < 300 && !/rc=\d+/.test(screen); i++) {
        await new Promise((r) => setTimeout(r, 200));
        screen = tmux('capture-pane', '-p');
      }
      expect(screen).toMatch(/rc=0/);
      expect(screen).toMatch(/uploading \[#{30}\] 100% 9\.0\/9\.0 MiB/);
    } finally {
      tmux('kill-server');
    }
  });
});

describe('host keys', () => {
  it('refuses a changed key loudly (exit 3), even with --accept-new-host-key', async () => {
    const h = await home({ a: a.configEntry() }, [a.knownHostsLine('wrong')]);
    for (const extra of [[], ['--accept-new-host-key']]) {
      const r = await gpuq(h, [...extra, 'submit', prog, '--node', 'a']);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/HOST KEY FOR node a CHANGED/);
      expect(r.stderr).toMatch(/man-in-the-middle/);
      expect(r.stderr).toContain(fingerprint(a));
    }
    expect(await readFile(join(h.dir, 'known_hosts'), 'utf8')).toBe(`${a.knownHostsLine('wrong')}\n`);
  });

  it('refuses an unknown key with its fingerprint and how to trust it; --accept-new-host-key records it', async () => {
    const h = await home({ a: a.configEntry() }, []);
    const r = await gpuq(h, ['submit', prog, '--node', 'a']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(fingerprint(a));
    expect(r.stderr).toMatch(/--accept-new-host-key/);
    expect(r.stderr).toMatch(/acceptNewHostKey/);
    const n = await gpuq(h, ['nodes', '--json']);
    expect(n.code).toBe(3);
    expect(JSON.parse(n.stdout)[0]).toMatchObject({ name: 'a', reachable: false });
    const trusted = await gpuq(h, ['--accept-new-host-key', 'nodes']);
    expect(trusted.code, trusted.stderr).toBe(0);
    const recorded = await readFile(join(h.dir, 'known_hosts'), 'utf8');
    expect(recorded.trim()).toBe(a.knownHostsLine('right'));
    const again = await gpuq(h, ['submit', prog, '--node', 'a', '--wait']);
    expect(again.code, again.stderr).toBe(0);
  });

  it('trusts on first use when the node config says so', async () => {
    const h = await home({ a: a.configEntry({ acceptNewHostKey: true }) }, []);
    const r = await gpuq(h, ['submit', prog, '--wait']);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(join(h.dir, 'known_hosts'), 'utf8')).trim()).toBe(a.knownHostsLine('right'));
  });

  it('reads a hashed [host]:port entry from the user known_hosts named by ssh config', async () => {
    const dir = join(a.dir, 'hashed');
    await mkdir(dir, { recursive: true });
    const kh = join(dir, 'known_hosts');
    await writeFile(kh, `${a.knownHostsLine('right')}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'pipe' });
    const hashed = await readFile(kh, 'utf8');
    expect(hashed).toMatch(/^\|1\|/);
    const cfg = join(dir, 'ssh_config');
    await writeFile(cfg, `Host *\n  UserKnownHostsFile ${kh}\n  GlobalKnownHostsFile /dev/null\n`);
    const h = await home({ a: a.configEntry() }, [], { GPUQ_SSH_CONFIG: cfg });
    const r = await gpuq(h, ['submit', prog, '--node', 'a', '--wait']);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(h.dir, 'known_hosts'), 'utf8')).toBe('');
  });
});

describe('ssh config', () => {
  it('reaches a node given as an ssh config alias (HostName, User, Port, IdentityFile from the file)', async () => {
    const h = await home(
      { a: { transport: 'ssh', host: 'node-a', workdir: `~/gpuq-${a.port}`, connectTimeout: '10s' } },
      [a.knownHostsLine('right')],
    );
    const r = await gpuq(h, ['submit', prog, '--wait']);
    expect(r.code, r.stderr).toBe(0);
    expect((await gpuq(h, ['logs', r.stdout.split('\n')[0]!])).stdout).toMatch(/^out /);
  });

  it('logs in with a key held by ssh-agent when the config names no identity file', async () => {
    const sock = join(a.dir, 'agent.sock');
    const agent = execFileSync('ssh-agent', ['-a', sock, '-s'], { encoding: 'utf8' });
    const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent)?.[1]);
    try {
      execFileSync('ssh-add', ['-q', a.clientKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
      const cfg = join(a.dir, 'agent_config');
      await writeFile(cfg, `Host *\n  IdentityFile ${join(a.dir, 'no-such-key')}\n  UserKnownHostsFile /dev/null\n`);
      const entry = a.configEntry();
      delete entry.identityFile;
      const h = await home({ a: entry }, [a.knownHostsLine('right')], { GPUQ_SSH_CONFIG: cfg, SSH_AUTH_SOCK: sock });
      const r = await gpuq(h, ['submit', prog, '--wait']);
      expect(r.code, r.stderr).toBe(0);
      // Without the agent there is no key at all: exit 3, saying what to set.
      const h2 = await home({ a: entry }, [a.knownHostsLine('right')], { GPUQ_SSH_CONFIG: cfg, SSH_AUTH_SOCK: '' });
      const without = await gpuq(h2, ['submit', prog]);
      expect(without.code).toBe(3);
      expect(without.stderr).toMatch(/no SSH key to log in as .*identityFile/s);
    } finally {
      if (pid) process.kill(pid, 'SIGTERM');
    }
  });

  it('goes through a ProxyJump host (ssh config) and through a node\'s "jump" field', async () => {
    const cfg = join(a.dir, 'jump_config');
    await writeFile(
      cfg,
      [
        `Host jumphost`,
        `  HostName 127.0.0.1`,
        `  Port ${a.port}`,
        `  User ${a.user}`,
        `  IdentityFile ${a.clientKeyPath}`,
        `Host behind`,
        `  HostName 127.0.0.1`,
        `  Port ${b.port}`,
        `  User ${b.user}`,
        `  IdentityFile ${b.clientKeyPath}`,
        `  ProxyJump jumphost`,
        `Host *`,
        `  IdentitiesOnly yes`,
        `  UserKnownHostsFile /dev/null`,
        '',
      ].join('\n'),
    );
    const before = (a.log().match(/Accepted publickey/g) ?? []).length;
    const h = await home(
      {
        viaconfig: { transport: 'ssh', host: 'behind', workdir: `~/gpuq-${b.port}` },
        viafield: { ...b.configEntry(), jump: 'jumphost' },
      },
      [a.knownHostsLine('right'), b.knownHostsLine('right')],
      { GPUQ_SSH_CONFIG: cfg },
    );
    // Both at once.
    const subs = await Promise.all(
      ['viaconfig', 'viafield'].map((node) => gpuq(h, ['submit', prog, '--node', node, '--wait'])),
    );
    for (const r of subs) expect(r.code, r.stderr).toBe(0);
    expect((a.log().match(/Accepted publickey/g) ?? []).length).toBeGreaterThanOrEqual(before + 2);
  });
});

describe('gpuq nodes', () => {
  let c: Sshd;
  let binDir = '';
  beforeAll(async () => {
    // A node with a stand-in nvidia-smi on its PATH, so the GPU columns have something to show.
    const bin = await mkdtemp(join(tmpdir(), 'gpuq-fakebin-'));
    await writeFile(
      join(bin, 'nvidia-smi'),
      [
        '#!/bin/sh',
        'case "$*" in',
        '  *query-gpu*) echo "0, GPU-aaaa, NVIDIA H100 80GB HBM3, 35, 10240, 81559"; ' +
          'echo "1, GPU-bbbb, NVIDIA H100 80GB HBM3, 0, 0, 81559" ;;',
        '  *query-compute-apps*) echo "GPU-aaaa, $$, 10200" ;;',
        'esac',
        '',
      ].join('\n'),
    );
    await chmod(bin, 0o755);
    await chmod(join(bin, 'nvidia-smi'), 0o755);
    binDir = bin;
    c = await startSshd({ alias: 'node-c', extraConfig: `SetEnv PATH=${bin}:/usr/local/bin:/usr/bin:/bin` });
  });
  afterAll(async () => {
    await c?.cleanup();
    if (binDir) await rm(binDir, { recursive: true, force: true });
  });

  it('probes all nodes at once; a dead one is unreachable with its reason and holds nobody up', async () => {
    // Two silent peers (they accept and never speak) each cost a whole connect timeout (10 s): probed
    // one after the other, the second is reached only when the first timed out; probed at once,
    // both are reached before either times out (judged by when they were reached, not by a clock
    // bound that a loaded machine could break).
    const silent = await Promise.all([silentPeer(), silentPeer()]);
    const silentNode = (port: number) => ({
      transport: 'ssh',
      host: '127.0.0.1',
      port,
      user: a.user,
      identityFile: a.clientKeyPath,
      connectTimeout: '10s',
    });
    const h = await home(
      {
        a: a.configEntry(),
        c: c.configEntry({ gpus: 2 }),
        dead: {
          transport: 'ssh',
          host: '127.0.0.1',
          port: 1,
          user: a.user,
          identityFile: a.clientKeyPath,
          connectTimeout: '10s',
        },
        silent1: silentNode(silent[0]!.port),
        silent2: silentNode(silent[1]!.port),
      },
      [a.knownHostsLine('right'), c.knownHostsLine('right')],
    );
    const r = await gpuq(h, ['nodes', '--json']).finally(() => {
      for (const p of silent) p.close();
    });
    expect(r.code).toBe(3);
    const reports = JSON.parse(r.stdout) as Array<{
      name: string;
      reachable: boolean;
      error: string | null;
      latencyMs: number | null;
      status: {
        load: number[];
        disk: { freeBytes: number };
        inodes: { total: number };
        gpus: Array<{ processes: unknown[] } & Record<string, unknown>> | null;
      };
    }>;
    expect(
      reports.map((x) => [x.name, x.reachable]),
      r.stdout,
    ).toEqual([
      ['a', true],
      ['c', true],
      ['dead', false],
      ['silent1', false],
      ['silent2', false],
    ]);
    const reached = silent.map((p) => p.acceptedAt[0] as number);
    expect(reached.every((t) => typeof t === 'number')).toBe(true);
    expect(Math.abs((reached[0] as number) - (reached[1] as number)), r.stdout).toBeLessThan(10_000);
    expect(reports[2]!.error).toMatch(/connection refused/);
    expect(reports[3]!.error).toMatch(/timed out|timeout/i);
    expect(reports[0]!.latencyMs).toBeGreaterThan(0);
    expect(reports[0]!.status.load).toHaveLength(3);
    expect(reports[0]!.status.disk.freeBytes).toBeGreaterThan(0);
    expect(reports[0]!.status.inodes.total).toBeGreaterThan(0);
    expect(reports[0]!.status.gpus).toBeNull();
    const gpus = reports[1]!.status.gpus!;
    expect(gpus).toHaveLength(2);
    expect(gpus[0]).toMatchObject({
      index: 0,
      name: 'NVIDIA H100 80GB HBM3',
      utilizationPct: 35,
      memoryUsedBytes: 10240 * 1024 ** 2,
    });
    expect(gpus[0]!.processes).toHaveLength(1);
    expect(gpus[1]!.processes).toEqual([]);

    const human = await gpuq(h, ['nodes']);
    expect(human.stdout).toMatch(/^NODE\s+STATUS/);
    expect(human.stdout).toMatch(/\ndead\s+unreachable/);
    expect(human.stdout).toMatch(/GPU 0 NVIDIA H100 80GB HBM3\s+util 35%/);
  });
});

/** A TCP peer on a loopback port that accepts connections and never says a word (an SSH stall). */
async function silentPeer(): Promise<{ port: number; acceptedAt: number[]; close: () => void }> {
  const sockets: Socket[] = [];
  const acceptedAt: number[] = [];
  const server = createServer((sock) => {
    acceptedAt.push(Date.now());
    sockets.push(sock);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    acceptedAt,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
