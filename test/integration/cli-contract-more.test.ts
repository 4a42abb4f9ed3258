/**
 * More of the public contract (CONTRACT.md) end to end through the built CLI on the local node:
 * exit 5 while another process holds the ledger's lock, the kernel's OOM-killer lines in a real
 * cgroup kill's evidence, a real SIGBUS, `watch --plain` and the live view's `c`/`y` cancel in a
 * real terminal (tmux), and colours on a TTY, with FORCE_COLOR, and never with NO_COLOR or --json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { need } from '../helpers/capability.js';
import { BIN, gpuq, gpuqJson, type Home, makeGate, makeHome, until, writeProgram } from '../helpers/cli.js';
import { canMakeCgroup } from '../helpers/hostile.js';

const ESC = '\u001b[';

/** Whether this process can read the kernel ring buffer (as the supervisor, running as us, would). */
function dmesgReadable(): boolean {
  try {
    execFileSync('dmesg', [], { stdio: ['ignore', 'ignore', 'ignore'] });
    return true;
  } catch {
    return false;
  }
}

/** Whether tmux is installed. */
function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const isRoot = process.getuid?.() === 0;

describe('the ledger lock', () => {
  it('exits 5 while another process holds the lock, after waiting, naming the file and what to do', async () => {
    const h = await makeHome();
    const ledger = join(h.dir, 'ledger.json');
    // The same lock the ledger takes (src/ledger/ledger.ts): proper-lockfile on the ledger's path,
    // kept fresh (mtime updated each second) so it never looks stale to gpuq.
    const release = await lockfile.lock(ledger, { realpath: false, stale: 5000, update: 1000 });
    try {
      const prog = await writeProgram('ok.py', 'print("ok")\n');
      // GPUQ_LOCK_WAIT (README) cuts the 20 s default wait to 2 s.
      const started = Date.now();
      const r = await gpuq({ ...h, env: { ...h.env, GPUQ_LOCK_WAIT: '2s' } }, ['submit', prog]);
      const waited = Date.now() - started;
      expect(r.code, r.stderr).toBe(5);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(ledger);
      expect(r.stderr).toMatch(/locked by another gpuq process/);
      expect(r.stderr).toContain(`rm -r '${ledger}.lock'`);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      // It waited for the holder (retries up to 150 ms apart, for GPUQ_LOCK_WAIT) before giving up.
      expect(waited).toBeGreaterThan(2_000);
    } finally {
      await release();
    }
    // A GPUQ_LOCK_WAIT that is not a duration is a usage error, named.
    const bad = await gpuq({ ...h, env: { ...h.env, GPUQ_LOCK_WAIT: 'soon' } }, ['list']);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toContain('GPUQ_LOCK_WAIT');
    // Nothing was recorded; with the lock released, the same command works.
    expect(await gpuqJson<Job[]>(h, ['list', '--all'])).toEqual([]);
    const ok = await gpuq(h, ['submit', await writeProgram('ok.py', 'print("ok")\n'), '--wait']);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('verdicts from real signals and kills', () => {
  const oomNeeds = need(
    isRoot && canMakeCgroup('memory') && dmesgReadable(),
    'root, a memory cgroup and a readable dmesg',
  );
  it.runIf(oomNeeds.run)(
    "a cgroup OOM kill carries the kernel's OOM-killer lines in status.json and the evidence",
    async () => {
      oomNeeds.check();
      const h = await makeHome();
      const prog = await writeProgram(
        'hog.py',
        'chunks = []\nwhile True:\n    chunks.append(bytearray(4 * 1024 * 1024))\n',
      );
      const r = await gpuq(h, ['submit', prog, '--memory', '64m', '--timeout', '60s', '--wait', '--json']);
      expect(r.code, r.stderr).toBe(12);
      const job = JSON.parse(r.stdout) as Job;
      expect(job.verdict?.class).toBe('oom');
      const status = JSON.parse(readFileSync(join(job.remote?.dir as string, 'status.json'), 'utf8')) as {
        kernelOom: string[];
      };
      // The kernel's own lines about this job's process, read from dmesg by the supervisor.
      const pid = job.remote?.pid;
      expect(status.kernelOom.length, JSON.stringify(status)).toBeGreaterThan(0);
      expect(
        status.kernelOom.some((l) => /Killed process \d+ \(python3?\)/.test(l)),
        status.kernelOom.join('\n'),
      ).toBe(true);
      expect(status.kernelOom.join('\n')).toMatch(new RegExp(`(pid=|process )${pid}[ ,]|gpuq-${job.id}`));
      // …and they reach the verdict: the killed process, its pid and its RSS as the kernel saw them.
      const evidence = job.verdict?.evidence ?? [];
      expect(
        evidence.some((e) =>
          /the kernel (OOM killer )?killed it.*: python3? \(pid \d+\) held [\d.]+ [KMG]iB RSS/.test(e),
        ),
        evidence.join('\n'),
      ).toBe(true);
    },
  );

  it('a program that gets SIGBUS (a mapped file truncated under it) is signaled/sigbus, exit 15', async () => {
    const h = await makeHome();
    const prog = await writeProgram(
      'bus.py',
      [
        'import mmap, os',
        'f = open("mapped.bin", "w+b")',
        'f.write(b"\\0" * 4096)',
        'f.flush()',
        'm = mmap.mmap(f.fileno(), 4096)',
        'f.truncate(0)',
        'print("touching", flush=True)',
        'print(m[0])',
        'print("survived")',
        '',
      ].join('\n'),
    );
    const r = await gpuq(h, ['submit', prog, '--wait', '--json']);
    expect(r.code, r.stderr).toBe(15);
    const job = JSON.parse(r.stdout) as Job;
    expect(job.verdict).toMatchObject({ class: 'signaled', cause: 'sigbus', signal: 'SIGBUS', exitCode: 135 });
    expect(job.verdict?.summary).toMatch(/bus error \(SIGBUS\)/);
    expect((await gpuq(h, ['logs', job.id])).stdout).toBe('touching\n');
  });
});

const tmuxNeeds = need(hasTmux(), 'tmux');
const SOCKET = `gpuq-contract-more-${process.pid}`;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
}

/** The pane as text (`escapes`: with its colour sequences). */
function screen(session: string, escapes = false): string {
  return tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', session);
}

/**
 * Runs `gpuq ARGS` in a detached 100x30 tmux pane (a real terminal) with the home's GPUQ_HOME and
 * `env`; its exit code lands in the returned file. The pane stays open (sleep) to be read.
 */
function inTerminal(home: Home, session: string, args: string[], env: Record<string, string> = {}): string {
  const codeFile = join(home.dir, `${session}.code`);
  const cmd = `${process.execPath} ${BIN} ${args.join(' ')}; echo $? > ${codeFile}; sleep 60`;
  const envArgs = Object.entries({ GPUQ_HOME: home.dir, PATH: home.env.PATH ?? '', CI: 'true', ...env }).flatMap(
    ([k, v]) => ['-e', `${k}=${v}`],
  );
  // tmux passes its server's environment: colour variables are set per test, never inherited.
  tmux(
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    '100',
    '-y',
    '30',
    ...envArgs,
    `unset NO_COLOR FORCE_COLOR; ${envExports(env)}${cmd}`,
  );
  return codeFile;
}

function envExports(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${v}; `)
    .join('');
}

async function exitCode(codeFile: string, ms = 30_000): Promise<string> {
  const read = () => (existsSync(codeFile) ? readFileSync(codeFile, 'utf8').trim() : '');
  await until(() => read() !== '', ms);
  return read();
}

describe.runIf(tmuxNeeds.run)('in a real terminal (tmux)', () => {
  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      // no server left
    }
  });

  it('watch --plain prints plain timestamped lines on a TTY and exits with the verdict code', async () => {
    tmuxNeeds.check();
    const h = await makeHome();
    const id = (
      await gpuq(h, ['submit', await writeProgram('plain.py', 'import sys\nprint("hello plain")\nsys.exit(3)\n'), '-q'])
    ).stdout.trim();
    const code = inTerminal(h, 'plain', ['watch', id, '--plain'], { NO_COLOR: '1' });
    expect(await exitCode(code), screen('plain')).toBe('10');
    const s = screen('plain');
    expect(s).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ job \w+ \(plain\.py\) on local/m);
    expect(s).toMatch(/ \[stdout\] hello plain$/m);
    expect(s).toMatch(/ done: failed, exit 3/);
    // Not the live view: no key help, no connection marker.
    expect(s).not.toContain('q leave');
    expect(s).not.toContain('● connected');
  });

  it('c asks to cancel, y cancels: the job ends cancelled and watch exits 16', async () => {
    tmuxNeeds.check();
    const h = await makeHome();
    const gate = await makeGate(); // never opened: the job runs until cancelled (60 s at most)
    const id = (
      await gpuq(h, [
        'submit',
        await writeProgram('held.py', `${gate.pyDef}print("holding", flush=True)\ngate_wait()\n`),
        '-q',
      ])
    ).stdout.trim();
    const code = inTerminal(h, 'cy', ['watch', id], { NO_COLOR: '1' });
    expect(
      await until(() => screen('cy').includes('holding') && screen('cy').includes('c cancel'), 30_000),
      screen('cy'),
    ).toBe(true);
    tmux('send-keys', '-t', 'cy', 'c');
    expect(await until(() => screen('cy').includes(`cancel job ${id}? y/n`), 10_000), screen('cy')).toBe(true);
    // Still running while the question is open.
    expect((await gpuqJson<Job>(h, ['show', id])).state).toBe('running');
    tmux('send-keys', '-t', 'cy', 'y');
    expect(await until(() => screen('cy').includes('✘ cancelled'), 30_000), screen('cy')).toBe(true);
    const job = await gpuqJson<Job>(h, ['show', id]);
    expect(job.verdict?.class).toBe('cancelled');
    tmux('send-keys', '-t', 'cy', 'q');
    expect(await exitCode(code)).toBe('16');
  });

  it('colours on a TTY; none there with NO_COLOR=1; FORCE_COLOR=1 colours a pipe, but never --json', async () => {
    tmuxNeeds.check();
    const h = await makeHome();
    const id = (await gpuq(h, ['submit', await writeProgram('ok.py', 'print(1)\n'), '--wait', '-q'])).stdout.trim();
    // A TTY, no colour variable: coloured.
    const tty = inTerminal(h, 'tty', ['show', id]);
    expect(await exitCode(tty)).toBe('0');
    expect(screen('tty')).toContain('succeeded');
    expect(screen('tty', true)).toContain(ESC);
    // A TTY with NO_COLOR=1: plain.
    const noColor = inTerminal(h, 'nocolor', ['show', id], { NO_COLOR: '1' });
    expect(await exitCode(noColor)).toBe('0');
    expect(screen('nocolor')).toContain('succeeded');
    expect(screen('nocolor', true)).not.toContain(ESC);
    // A pipe: plain by default (makeHome sets NO_COLOR; drop it), coloured with FORCE_COLOR=1.
    const { NO_COLOR: _n, ...noVars } = h.env;
    const pipe = await gpuq({ ...h, env: noVars }, ['show', id]);
    expect(pipe.code, pipe.stderr).toBe(0);
    expect(pipe.stdout).not.toContain(ESC);
    const forced = await gpuq({ ...h, env: { ...noVars, FORCE_COLOR: '1' } }, ['show', id]);
    expect(forced.stdout).toContain('succeeded');
    expect(forced.stdout).toContain(ESC);
    for (const args of [['show', id], ['list']]) {
      const json = await gpuq({ ...h, env: { ...noVars, FORCE_COLOR: '1' } }, [...args, '--json']);
      expect(json.code, json.stderr).toBe(0);
      expect(json.stdout).not.toContain(ESC);
      expect(() => JSON.parse(json.stdout)).not.toThrow();
    }
    // NO_COLOR wins over FORCE_COLOR.
    const both = await gpuq({ ...h, env: { ...noVars, FORCE_COLOR: '1', NO_COLOR: '1' } }, ['show', id]);
    expect(both.stdout).not.toContain(ESC);
  });
});
