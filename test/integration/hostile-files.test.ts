/**
 * Files a job plants in its own folder cannot hang or crash a gpuq command (issue 10, items 4, 5,
 * 7, 9): FIFOs in place of status.json, monitor.json, samples.jsonl and the logs; a huge line in
 * samples.jsonl, a huge status.json and a huge stdout. Run through the real CLI on the local node
 * (as the test runner and as the unprivileged user) and over the private sshd. Each command must
 * return within a bound, the client's memory stays bounded (max RSS by /usr/bin/time), `logs`
 * streams every byte, no process of the read commands is left behind, and the job still gets the
 * verdict it earned.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { need, type Need } from '../helpers/capability.js';
import {
  BIN,
  gpuq,
  type Home,
  makeGate,
  makeHome,
  RUNUSER,
  type RunResult,
  startGpuq,
  until,
  NO_BOUNDARY_CONFIG,
  writeSharedProgram as writeProgram,
} from '../helpers/cli.js';
import { ensureTestUser, jobProcesses, TEST_USER, waitForFile } from '../helpers/hostile.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';

const isRoot = process.getuid?.() === 0;
let sshd: Sshd | null = null;

beforeAll(async () => {
  if (isRoot) sshd = await startSshd({ alias: 'hostile-files' });
}, 60_000);
afterAll(async () => {
  await sshd?.cleanup();
});

interface Mode {
  label: string;
  needs: () => Need;
  home: () => Promise<Home>;
}

const MODES: Mode[] = [
  {
    label: 'local node, as the test runner',
    needs: () => need(true, 'nothing'),
    home: () => makeHome(NO_BOUNDARY_CONFIG),
  },
  {
    label: `local node, as ${TEST_USER}`,
    needs: () => need(ensureTestUser(), `root, to create the user ${TEST_USER} and run gpuq as it`),
    home: () => makeHome(NO_BOUNDARY_CONFIG, {}, { runAs: TEST_USER }),
  },
  {
    label: 'over SSH',
    needs: () => need(sshd !== null, 'root, to run the private sshd'),
    home: async () => {
      const s = sshd as Sshd;
      const h = await makeHome(
        { nodes: { s: s.configEntry({ boundary: 'none' }) }, defaults: { node: 's' } },
        { GPUQ_SSH_CONFIG: s.sshConfigPath },
      );
      await writeFile(join(h.dir, 'known_hosts'), `${s.knownHostsLine('right')}\n`);
      return h;
    },
  },
];

/** Runs gpuq and fails the test if it takes longer than `ms`. */
async function bounded(h: Home, args: string[], ms = 45_000): Promise<RunResult & { ms: number }> {
  const start = Date.now();
  const run = startGpuq(h, args);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), ms);
  try {
    const r = await run.done;
    const took = Date.now() - start;
    expect(r.signal, `gpuq ${args.join(' ')} did not return within ${ms} ms`).toBeNull();
    expect(r.stderr, `gpuq ${args.join(' ')}`).not.toMatch(/internal error|ERR_STRING_TOO_LONG|\n\s+at /);
    return { ...r, ms: took };
  } finally {
    clearTimeout(timer);
  }
}

/** `gpuq ARGS | wc -c` under /usr/bin/time: the bytes printed on stdout and the client's max RSS. */
function measured(h: Home, args: string[]): Promise<{ bytes: number; maxRssKiB: number; code: number | null }> {
  const timeFile = join(h.dir, `time-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const gpuqArgv = [process.execPath, BIN, ...args];
  const runas = h.runAs !== undefined ? [RUNUSER, '-u', h.runAs, '--'] : [];
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `${[...runas, '/usr/bin/time', '-f', '%M', '-o', timeFile, ...gpuqArgv].map(q).join(' ')} | wc -c`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const rss = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop());
      resolve({ bytes: Number(out.trim()), maxRssKiB: rss, code });
    });
  });
}

/** Live processes other than the job's whose working folder or command line is inside `dir`. */
function processesIn(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd === '') continue; // zombie
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${name}/cwd`);
      } catch {
        /* not ours to read */
      }
      if (cwd.startsWith(dir) || cmd.includes(dir)) found.push(`${name}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

async function submit(h: Home, prog: string, extra: string[] = []): Promise<{ id: string; dir: string }> {
  const r = await gpuq(h, ['submit', prog, '-q', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  const id = r.stdout.trim();
  const shown = await gpuq(h, ['show', id, '--json']);
  expect(shown.code, shown.stderr).toBe(0);
  const job = JSON.parse(shown.stdout) as Job;
  return { id, dir: job.remote?.dir as string };
}

const FIFO_PROGRAM = (gateDef: string) => `import os, stat, time
${gateDef}
os.chdir('..')
# Once the monitor runs (its first sample written), so that its own writes meet the FIFOs.
deadline = time.time() + 30
while time.time() < deadline and not (os.path.isfile('samples.jsonl') and os.path.getsize('samples.jsonl') > 0):
    time.sleep(0.05)
names = ['status.json', 'monitor.json', 'samples.jsonl', 'stdout.log', 'stderr.log', 'monitor.json.tmp']
for n in names:
    if os.path.exists(n):
        os.replace(n, n + '.orig')
    os.mkfifo(n)
open('work/planted', 'w').close()
gate_wait()
# monitor.json.tmp stays a FIFO: the monitor rewrites monitor.json through it every second and at
# its end (a blocking open of it hung the monitor for good, the supervisor waiting for it, and every
# wait and logs -f with them).
for n in names[:-1]:
    try:
        if stat.S_ISFIFO(os.lstat(n).st_mode):
            os.unlink(n)
            if os.path.exists(n + '.orig'):
                os.replace(n + '.orig', n)
    except FileNotFoundError:
        pass
print('restored', flush=True)
`;

const HUGE = 200 * 1024 * 1024;
const HUGE_PROGRAM = (gateDef: string) => `import os, sys
${gateDef}
chunk = b'x' * (1024 * 1024)
with open('../samples.jsonl', 'ab') as f:
    for _ in range(${HUGE / (1024 * 1024)}):
        f.write(chunk)
with open('../status.json.big', 'wb') as f:
    for _ in range(64):
        f.write(chunk)
os.replace('../status.json.big', '../status.json')
out = sys.stdout.buffer
for _ in range(${HUGE / (1024 * 1024)}):
    out.write(chunk)
out.write(b'\\n')
out.flush()
open('planted', 'w').close()
gate_wait()
`;

describe.each(MODES)('$label', (mode) => {
  it('FIFOs in place of the job files hang no command, leave nothing behind, and the job still succeeds', async () => {
    mode.needs().check();
    const h = await mode.home();
    const gate = await makeGate();
    const prog = await writeProgram('fifos.py', FIFO_PROGRAM(gate.pyDef));
    const { id, dir } = await submit(h, prog, ['--timeout', '5m']);
    await waitForFile(dir, 'planted');
    const waiting = startGpuq(h, ['wait', id, '--json']);
    const following = startGpuq(h, ['logs', '-f', id]);
    for (const args of [
      ['list'],
      ['show', id],
      ['logs', id],
      ['logs', id, '--tail', '3'],
      ['diagnose', id],
      ['nodes'],
    ]) {
      const r = await bounded(h, args);
      expect(r.code, `gpuq ${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    await gate.open();
    const kill = setTimeout(() => {
      waiting.killAll('SIGKILL');
      following.killAll('SIGKILL');
    }, 90_000);
    const [w, f] = await Promise.all([waiting.done, following.done]);
    clearTimeout(kill);
    expect(w.signal, 'wait did not return').toBeNull();
    expect(f.signal, 'logs -f did not return').toBeNull();
    expect(w.code, w.stderr).toBe(0);
    expect((JSON.parse(w.stdout) as Job[])[0]?.verdict?.class).toBe('succeeded');
    expect(
      await until(() => jobProcesses(id).length === 0 && processesIn(dir).length === 0, 10_000),
      `left behind: ${processesIn(dir).join('; ')}`,
    ).toBe(true);
  }, 240_000);

  it('a huge line in samples.jsonl, a huge status.json and a huge stdout keep memory bounded; logs streams every byte', async () => {
    mode.needs().check();
    const h = await mode.home();
    const gate = await makeGate();
    const prog = await writeProgram('huge.py', HUGE_PROGRAM(gate.pyDef));
    const { id, dir } = await submit(h, prog, ['--timeout', '5m']);
    await waitForFile(dir, 'planted');
    for (const args of [['list'], ['show', id], ['diagnose', id]]) {
      const r = await measured(h, args);
      expect(r.code, `gpuq ${args.join(' ')}`).toBe(0);
      expect(r.maxRssKiB, `gpuq ${args.join(' ')} max RSS (KiB)`).toBeLessThan(200 * 1024);
    }
    const logs = await measured(h, ['logs', id, '--stdout']);
    expect(logs.code).toBe(0);
    expect(logs.bytes).toBe(HUGE + 1);
    expect(logs.maxRssKiB, 'gpuq logs max RSS (KiB)').toBeLessThan(200 * 1024);
    await gate.open();
    const w = await bounded(h, ['wait', id, '--json'], 120_000);
    expect(w.code, w.stderr).toBe(0);
    expect((JSON.parse(w.stdout) as Job[])[0]?.verdict?.class).toBe('succeeded');
    expect(await until(() => processesIn(dir).length === 0, 10_000), processesIn(dir).join('; ')).toBe(true);
  }, 300_000);
});

describe('logs -f', () => {
  it('ends with the job even when status.json names another pid, and leaves no tail behind after Ctrl-C', async () => {
    const h = await makeHome(NO_BOUNDARY_CONFIG);
    const gate = await makeGate();
    const prog = await writeProgram(
      'pid1.py',
      `import json, time\n${gate.pyDef}\nwith open('../status.json.x', 'w') as f:\n    json.dump({"state": "running", "supervisorPid": 1}, f)\nimport os\nos.replace('../status.json.x', '../status.json')\nprint('line', flush=True)\nopen('planted', 'w').close()\ngate_wait()\nprint('end', flush=True)\n`,
    );
    const { id, dir } = await submit(h, prog, ['--timeout', '5m']);
    await waitForFile(dir, 'planted');
    // Ctrl-C of a follower: nothing of it stays on the node.
    const first = startGpuq(h, ['logs', '-f', id]);
    expect(await until(() => processesIn(dir).some((p) => /tail/.test(p)), 20_000)).toBe(true);
    first.child.kill('SIGINT');
    // Ctrl-C ends the follow on the node too, and exits as a shell reports SIGINT.
    expect((await first.done).code).toBe(130);
    expect(
      await until(() => !processesIn(dir).some((p) => /\btail\b|sleep 0\.5|flock -ns job\.lock/.test(p)), 10_000),
      processesIn(dir).join('; '),
    ).toBe(true);
    // A follower ends when the job does, though status.json says pid 1.
    const second = startGpuq(h, ['logs', '-f', id]);
    expect(await until(() => processesIn(dir).some((p) => /tail/.test(p)), 20_000)).toBe(true);
    await gate.open();
    const kill = setTimeout(() => second.child.kill('SIGKILL'), 60_000);
    const r = await second.done;
    clearTimeout(kill);
    expect(r.signal, 'logs -f did not end with the job').toBeNull();
    expect(r.stdout).toBe('line\nend\n');
    expect(existsSync(join(dir, 'status.json'))).toBe(true);
    expect(await until(() => processesIn(dir).length === 0, 10_000), processesIn(dir).join('; ')).toBe(true);
    execFileSync('true');
  }, 180_000);
});
