/**
 * gpuq end to end against real OpenSSH daemons on loopback, logged in as an unprivileged
 * user: the real binary, real supervisors on the "nodes", real failures (daemon killed,
 * supervisor killed, memory hog).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuq, gpuqJson, makeHome, writeProgram, type Home } from '../helpers/cli.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

let a: Sshd;
let b: Sshd;
const homes: Home[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([startSshd(), startSshd()]);
});
afterAll(async () => {
  await Promise.all(homes.map((h) => h.cleanup()));
  await Promise.all([a?.cleanup(), b?.cleanup()]);
});

/** A GPUQ_HOME whose config has nodes a and b, both host keys trusted in gpuq's own known_hosts. */
async function twoNodes(extra: Record<string, unknown> = {}): Promise<Home> {
  const h = await makeHome({ nodes: { a: a.configEntry(), b: b.configEntry() }, ...extra }, { GPUQ_SSH_CONFIG: a.sshConfigPath });
  homes.push(h);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`${h.dir}/known_hosts`, `${a.knownHostsLine('right')}\n${b.knownHostsLine('right')}\n`);
  return h;
}

interface JobJson {
  id: string;
  node: string;
  state: string;
  remote: { dir: string; supervisorPid: number; pid: number } | null;
  verdict: { class: string; cause: string | null; summary: string } | null;
}

describe('submit → wait → logs on two nodes', () => {
  it('runs a job on each node and reads its output back', async () => {
    const h = await twoNodes();
    const prog = await writeProgram('hi.py', 'import os, sys\nprint("out", os.environ["GPUQ_JOB_ID"])\nprint("err line", file=sys.stderr)\n');
    for (const node of ['a', 'b']) {
      const r = await gpuq(h, ['submit', prog, '--node', node, '--wait']);
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.code, r.stderr).toBe(0);
      const id = r.stdout.split('\n')[0]!;
      const logs = await gpuq(h, ['logs', id]);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toBe(`out ${id}\n`);
      expect(logs.stderr).toBe('err line\n');
      const job = await gpuqJson<JobJson>(h, ['show', id]);
      expect(job.node).toBe(node);
      expect(job.verdict?.class).toBe('succeeded');
    }
  });
});
