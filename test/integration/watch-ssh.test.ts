/**
 * `gpuq watch` on an SSH node (a real OpenSSH daemon on loopback): one login carries the logs,
 * the samples and the end; the node killed and started again mid-job is reconnected to, and
 * the log goes on with no line lost or repeated.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { gpuq, makeGate, makeHome, startGpuq, until, writeProgram, type Home } from '../helpers/cli.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

let node: Sshd;
let home: Home;
beforeAll(async () => {
  node = await startSshd({ alias: 'watch-node' });
  home = await makeHome({ nodes: { n: node.configEntry() } }, { GPUQ_SSH_CONFIG: node.sshConfigPath });
  await writeFile(join(home.dir, 'known_hosts'), `${node.knownHostsLine('right')}\n`);
});
afterAll(async () => {
  await home?.cleanup();
  await node?.cleanup();
});

describe('gpuq watch over SSH', () => {
  it('streams over one connection and resumes after the node comes back', async () => {
    const n = 80;
    // Lines 0-10, then the program holds until the node is back (a gate, not a race), then the rest.
    const gate = await makeGate();
    onTestFinished(() => gate.cleanup());
    const prog = await writeProgram(
      'count.py',
      `import time\n${gate.pyDef}for i in range(${n}):\n` +
        `    print("line", i, flush=True)\n    if i == 10:\n        gate_wait()\n` +
        `    time.sleep(0.05)\n`,
    );
    const sub = await gpuq(home, ['submit', prog, '--node', 'n', '-q']);
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.trim();
    const watching = startGpuq(home, ['watch', id, '--json']);
    let seen = '';
    watching.child.stdout?.on('data', (d: Buffer) => (seen += d.toString()));
    expect(await until(() => seen.includes('"line":"line 5"'), 15_000), seen).toBe(true);
    // Logs, samples and the wait for the end share one login: the watch process holds exactly
    // one connection to the node (counted by the kernel, not by when sshd's log catches up).
    expect(connectionsOf(watching.child.pid!, node.port), seen).toBe(1);
    await node.stop();
    // The watch noticed the drop before the node comes back.
    expect(await until(() => seen.includes('"status":"reconnecting"'), 20_000), seen).toBe(true);
    await node.start();
    await gate.open();
    const r = await watching.done;
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; status?: string; line?: string });
    const statuses = events.filter((e) => e.type === 'connection').map((e) => e.status);
    expect(statuses[0]).toBe('connected');
    expect(statuses).toContain('reconnecting');
    expect(statuses.at(-1)).toBe('connected');
    expect(events.filter((e) => e.type === 'log').map((e) => e.line)).toEqual(
      Array.from({ length: n }, (_, i) => `line ${i}`),
    );
    expect(events.at(-1)).toMatchObject({ type: 'verdict', exitCode: 0 });
  });
});

/** TCP connections that process `pid` holds to 127.0.0.1:port (from `ss -tnp`). */
function connectionsOf(pid: number, port: number): number {
  const out = execFileSync('ss', ['-Htnp', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(`pid=${pid},`)).length;
}
