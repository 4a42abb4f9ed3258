/**
 * Faults on SSH nodes, end to end with the real binary and real OpenSSH daemons: a node killed
 * during `wait` and `logs -f` and started again, a node down at submit, a supervisor killed
 * (`lost`), and a memory hog on a node where the user cannot make cgroups (memory watch).
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { gpuq, gpuqJson, makeGate, makeHome, startGpuq, until, writeProgram, type Home } from '../helpers/cli.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import type { Job } from '../../src/core/types.js';

let a: Sshd;
let b: Sshd;
const homes: Home[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([startSshd({ alias: 'fault-a' }), startSshd({ alias: 'fault-b' })]);
});
afterAll(async () => {
  await Promise.all(homes.map((h) => h.cleanup()));
  await Promise.all([a?.cleanup(), b?.cleanup()]);
});

async function home(nodes: Record<string, unknown>, defaults: Record<string, unknown> = {}): Promise<Home> {
  const h = await makeHome({ defaults, nodes }, { GPUQ_SSH_CONFIG: a.sshConfigPath });
  homes.push(h);
  await writeFile(join(h.dir, 'known_hosts'), `${a.knownHostsLine('right')}\n${b.knownHostsLine('right')}\n`);
  return h;
}

describe('a node killed during wait and logs -f, then started again', () => {
  it('both reconnect with a note on stderr; logs neither repeat nor lose a line; the verdict is right', async () => {
    const h = await home({ b: b.configEntry() });
    const n = 60;
    // Lines 0-10, then the program holds until the node is back (a gate, not a race), then the rest.
    const gate = await makeGate();
    onTestFinished(() => gate.cleanup());
    const prog = await writeProgram(
      'count.py',
      `import time\n${gate.pyDef}for i in range(${n}):\n` +
        `    print("line", i, flush=True)\n    if i == 10:\n        gate_wait()\n` +
        `    time.sleep(0.05)\n`,
    );
    const sub = await gpuqJson<Job>(h, ['submit', prog, '--node', 'b']);
    const logins = () => (b.log().match(/Accepted publickey/g) ?? []).length;
    const before = logins();
    const waiting = startGpuq(h, ['wait', sub.id]);
    const following = startGpuq(h, ['logs', '-f', '--stdout', sub.id]);
    let seen = '';
    following.child.stdout?.on('data', (d: Buffer) => (seen += d.toString()));
    // Both are connected (two more logins) and streaming before the node goes down.
    expect(await until(() => /line 5\n/.test(seen) && logins() >= before + 2, 15_000)).toBe(true);
    await b.stop();
    // Unreachable is not dead: reading the job while its node is down leaves it running.
    const during = await gpuq(h, ['list', '--json']);
    expect(during.code).toBe(0);
    expect((JSON.parse(during.stdout) as Job[]).find((j) => j.id === sub.id)?.verdict).toBeNull();
    // The client noticed the drop (its reconnect notice) before the node comes back.
    let waitErr = '';
    waiting.child.stderr?.on('data', (d: Buffer) => (waitErr += d.toString()));
    expect(await until(() => /reconnecting/.test(waitErr), 20_000), 'wait never noticed the drop').toBe(true);
    await b.start();
    await gate.open();
    const [w, f] = await Promise.all([waiting.done, following.done]);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toMatch(/succeeded/);
    expect(w.stderr).toMatch(/node b: .*reconnecting in [\d.]+ s/);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).toMatch(/reconnecting/);
    expect(f.stdout).toBe(Array.from({ length: n }, (_, i) => `line ${i}\n`).join(''));
  });
});

describe('a node down at submit', () => {
  let blackhole: Server;
  let port = 0;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    // Accepts TCP connections and never says a word: a host that hangs the handshake.
    blackhole = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    port = (blackhole.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => blackhole.close(r));
  });

  it('with --node: exit 3 within the connect timeout, naming the node and the cause', async () => {
    const h = await home({ hung: { ...a.configEntry(), port, connectTimeout: '10s' } });
    const prog = await writeProgram('p.py', 'print(1)\n');
    // What starting gpuq costs right now (the hostile tests may be loading the machine), measured
    // with a submit that stops at an unknown node, just before: the bound is on the rest.
    const b0 = Date.now();
    expect((await gpuq(h, ['submit', prog, '--node', 'nowhere'])).code).toBe(2);
    const startup = Date.now() - b0;
    const t0 = Date.now();
    const r = await gpuq(h, ['submit', prog, '--node', 'hung']);
    expect(r.code).toBe(3);
    expect(Date.now() - t0 - startup, `${r.stderr} (startup ${startup} ms)`).toBeLessThan(10_000 + 5000);
    expect(r.stderr).toMatch(/node hung is unreachable: .*timed out after 10 s/);
    const jobs = await gpuqJson<Job[]>(h, ['list']);
    expect(jobs[0]?.verdict?.class).toBe('lost');
  });

  it('without --node: tries the next node and says so on stderr (the default node first)', async () => {
    const prog = await writeProgram('p.py', 'print("ran")\n');
    const nodes = {
      down: { ...a.configEntry(), port: 1 },
      hung: { ...a.configEntry(), port, connectTimeout: '10s' },
      b: b.configEntry(),
    };
    // Both homes at once; the job that lands is all that matters (its run is another test's).
    await Promise.all(
      [{}, { node: 'down' }].map(async (defaults) => {
        const h = await home(nodes, defaults);
        const r = await gpuq(h, ['submit', prog, '--json']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/node down is unreachable \(connection refused .*\); trying the other nodes/);
        const job = JSON.parse(r.stdout) as Job;
        expect(job.node).toBe('b');
        expect(job.remote?.dir).toBeTruthy();
      }),
    );
  });
});

describe('job outcomes on an SSH node', () => {
  it('a killed supervisor makes the job lost, once the node answers', async () => {
    const h = await home({ b: b.configEntry() });
    const prog = await writeProgram('sleepy.py', 'import time\ntime.sleep(60)\n');
    const job = await gpuqJson<Job>(h, ['submit', prog, '--node', 'b']);
    try {
      process.kill(job.remote!.supervisorPid!, 'SIGKILL');
      const w = await gpuq(h, ['wait', job.id, '--json']);
      expect(w.code, w.stderr).toBe(17);
      const [done] = JSON.parse(w.stdout) as Job[];
      expect(done?.id).toBe(job.id);
      expect(done?.verdict?.class).toBe('lost');
      expect(done?.verdict?.summary).toMatch(/supervisor vanished/);
    } finally {
      try {
        process.kill(-job.remote!.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });

  it('a node that rebooted while the job ran makes it lost, told by the boot id once the node answers', async () => {
    const node = await startSshd({ alias: 'fault-r', bootId: 'boot-before' });
    try {
      const h = await makeHome({ nodes: { r: node.configEntry() } }, { GPUQ_SSH_CONFIG: node.sshConfigPath });
      homes.push(h);
      await writeFile(join(h.dir, 'known_hosts'), `${node.knownHostsLine('right')}\n`);
      const prog = await writeProgram('long.py', 'import time\ntime.sleep(60)\n');
      const job = await gpuqJson<Job>(h, ['submit', prog, '--node', 'r']);
      const logins = (node.log().match(/Accepted publickey/g) ?? []).length;
      const waiting = startGpuq(h, ['wait', job.id]);
      expect(await until(() => (node.log().match(/Accepted publickey/g) ?? []).length > logins, 10_000)).toBe(true);
      // The "reboot": the daemon and every process of the node go, it comes back with a new boot id.
      await node.stop();
      for (const pid of [-job.remote!.pid!, job.remote!.supervisorPid!]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      node.setBootId('boot-after');
      let waitErr = '';
      waiting.child.stderr?.on('data', (d: Buffer) => (waitErr += d.toString()));
      expect(await until(() => /reconnecting/.test(waitErr), 20_000), 'wait never noticed the drop').toBe(true);
      await node.start();
      const w = await waiting.done;
      expect(w.code, w.stderr).toBe(17);
      expect(w.stderr).toMatch(/reconnecting/);
      const done = await gpuqJson<Job>(h, ['show', job.id]);
      expect(done.verdict?.class).toBe('lost');
      expect(done.verdict?.summary).toMatch(/rebooted/);
      expect(done.verdict?.evidence.join(' ')).toMatch(/boot-before.*boot-after/);
    } finally {
      await node.cleanup();
    }
  });

  it('a memory hog over --memory is oom, enforced by the memory watch where the user has no cgroup', async () => {
    const h = await home({ b: b.configEntry() });
    const prog = await writeProgram(
      'hog.py',
      'import time\nx = []\nwhile True:\n    x.append(bytearray(8 * 1024 * 1024))\n    time.sleep(0.01)\n',
    );
    const r = await gpuq(h, ['submit', prog, '--node', 'b', '--memory', '96m', '--wait', '--json']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(12);
    const job = JSON.parse(r.stdout) as Job;
    expect(job.verdict?.class).toBe('oom');
    expect(job.verdict?.cause).toBe('memory_watch');
    // it ran as the unprivileged node user, who cannot make a memory cgroup
    expect(execFileSync('stat', ['-c', '%U', job.remote!.dir], { encoding: 'utf8' }).trim()).toBe(b.user);
  });
});
