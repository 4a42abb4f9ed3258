/**
 * What `submit --wait` and `wait` show while they block: `--follow` streams the program's stdout
 * to stdout and its stderr to stderr, then the verdict on stderr; on a terminal (tmux) a status
 * line on stderr says where the job stands (running with its time and memory, or queued with its
 * place on a 1-GPU node and who holds the GPU) and is gone when the verdict prints; without a
 * terminal there is no status line at all. Real jobs, tests run concurrently.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startSshd } from '../helpers/sshd.js';
import { BIN, gpuq, type Home, makeGate, makeHome, SYSTEM_PYTHON, startGpuq, until } from '../helpers/cli.js';

const SOCKET = `gpuq-wait-test-${process.pid}`;
const tmux = (...args: string[]) =>
  execFileSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
const screen = (session: string) => tmux('capture-pane', '-p', '-t', session);
afterAll(() => {
  try {
    tmux('kill-server');
  } catch {
    // no server left
  }
});

/** A home of this test's own (concurrent tests clean up themselves) and a folder for its programs. */
async function setup(config?: unknown) {
  const base = await mkdtemp(join(tmpdir(), 'gpuq-wf-'));
  await chmod(base, 0o755);
  const home = await makeHome(config, {}, { autoCleanup: false });
  return {
    home,
    base,
    program: async (name: string, text: string) => {
      const path = join(base, name);
      await writeFile(path, text);
      return path;
    },
    cleanup: async () => {
      await home.cleanup();
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** Prints out/err lines in turn, then exits with the code given as its argument. */
const TALK =
  'import sys, time\nfor i in range(5):\n    print("out", i, flush=True)\n    print("err", i, file=sys.stderr, flush=True)\n' +
  '    time.sleep(0.05)\nsys.exit(int(sys.argv[1]))\n';

const started = (id: string) => `gpuq: started ${id} on local; waiting for it to end`;

/** Runs `cmd` in a tmux pane 120 columns wide; its exit code lands in `codeFile`. */
function inTerminal(home: Home, session: string, args: string[], codeFile: string): void {
  const cmd = `${process.execPath} ${BIN} ${args.join(' ')}; echo $? > ${codeFile}; sleep 60`;
  tmux(
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    '120',
    '-y',
    '20',
    '-e',
    `GPUQ_HOME=${home.dir}`,
    '-e',
    'NO_COLOR=1',
    cmd,
  );
}
const codeOf = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).trim();

describe.concurrent('following and the status line', () => {
  for (const [arg, code, verdict] of [
    ['0', 0, 'succeeded \\(exit 0\\)'],
    ['3', 10, 'failed \\(exit 3\\)'],
  ] as const)
    it(`submit --wait --follow: the program's stdout on stdout, its stderr then the verdict on stderr (exit ${code})`, async () => {
      const s = await setup();
      try {
        const r = await gpuq(s.home, ['submit', await s.program('talk.py', TALK), '--arg', arg, '--wait', '--follow']);
        expect(r.code, r.stderr).toBe(code);
        expect(r.stdout).toBe([0, 1, 2, 3, 4].map((i) => `out ${i}\n`).join(''));
        const lines = r.stderr.trimEnd().split('\n');
        const id = /^gpuq: started (\w+) /.exec(lines[0] ?? '')?.[1] as string;
        expect(lines[0]).toBe(started(id));
        expect(lines.slice(1, -1)).toEqual([0, 1, 2, 3, 4].map((i) => `err ${i}`));
        expect(lines.at(-1)).toMatch(new RegExp(`^${id} ${verdict}: `));
        expect(r.stderr).not.toMatch(/[\r\u001b]/);
      } finally {
        await s.cleanup();
      }
    });

  it('submit --follow -q: implies --wait, and gpuq prints nothing of its own', async () => {
    const s = await setup();
    try {
      const r = await gpuq(s.home, ['submit', await s.program('talk.py', TALK), '--arg', '3', '--follow', '-q']);
      expect(r.code, r.stderr).toBe(10);
      expect(r.stdout).toBe([0, 1, 2, 3, 4].map((i) => `out ${i}\n`).join(''));
      expect(r.stderr).toBe([0, 1, 2, 3, 4].map((i) => `err ${i}\n`).join(''));
    } finally {
      await s.cleanup();
    }
  });

  it('submit --wait --follow to an SSH node: output and wait share one connection', async () => {
    const sshd = await startSshd({ alias: 'follow-node' });
    const s = await setup({ nodes: { n: sshd.configEntry() } });
    try {
      s.home.env.GPUQ_SSH_CONFIG = sshd.sshConfigPath;
      await writeFile(join(s.home.dir, 'known_hosts'), `${sshd.knownHostsLine('right')}\n`);
      const r = await gpuq(s.home, ['submit', await s.program('talk.py', TALK), '--arg', '0', '--wait', '--follow']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe([0, 1, 2, 3, 4].map((i) => `out ${i}\n`).join(''));
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines.slice(1, -1)).toEqual([0, 1, 2, 3, 4].map((i) => `err ${i}`));
      expect(lines.at(-1)).toMatch(/^\w+ succeeded \(exit 0\): /);
      // One login: the submit's connection carried the follow and the wait.
      expect((sshd.log().match(/Accepted publickey/g) ?? []).length).toBe(1);
    } finally {
      await s.cleanup();
      await sshd.cleanup();
    }
  });

  it('wait --follow ID on a running job streams its output from the start, live, then its verdict', async () => {
    const s = await setup();
    const gate = await makeGate({ dir: s.base, autoCleanup: false });
    try {
      const prog = await s.program(
        'gated.py',
        `${gate.pyDef}import sys\nprint("before", flush=True)\nprint("warn", file=sys.stderr, flush=True)\ngate_wait()\nprint("after", flush=True)\n`,
      );
      const sub = await gpuq(s.home, ['submit', prog, '-q']);
      expect(sub.code, sub.stderr).toBe(0);
      const id = sub.stdout.trim();
      const w = startGpuq(s.home, ['wait', '--follow', id]);
      let seen = '';
      w.child.stdout?.on('data', (d: Buffer) => (seen += d.toString()));
      // The job is still at its gate: what it printed before the wait began reaches us now.
      expect(await until(() => seen.includes('before\n'), 30_000), seen).toBe(true);
      expect(seen).not.toContain('after');
      await gate.open();
      const r = await w.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('before\nafter\n');
      expect(r.stderr).toMatch(new RegExp(`^warn\\n${id} succeeded \\(exit 0\\): .*\\n$`));
    } finally {
      await gate.cleanup();
      await s.cleanup();
    }
  });

  it('refuses --follow with --json, and with several jobs or files (exit 2)', async () => {
    const s = await setup();
    try {
      const prog = await s.program('talk.py', TALK);
      const [a, b, c, d] = await Promise.all([
        gpuq(s.home, ['submit', prog, '--follow', '--json']),
        gpuq(s.home, ['wait', '--follow', '--json', 'abc']),
        gpuq(s.home, ['wait', '--follow', 'abc', 'def']),
        gpuq(s.home, ['submit', prog, prog, '--wait', '--follow']),
      ]);
      for (const r of [a, b, c, d]) {
        expect(r.code, r.stderr).toBe(2);
        expect(r.stdout).toBe('');
      }
      expect(a.stderr).toMatch(/--follow .* --json/);
      expect(c.stderr).toMatch(/one job/);
      expect(d.stderr).toMatch(/one job/);
      expect(JSON.parse((await gpuq(s.home, ['list', '--json'])).stdout)).toEqual([]);
    } finally {
      await s.cleanup();
    }
  });

  it('prints no status line when stderr is not a terminal', async () => {
    const s = await setup();
    try {
      // Runs past the wait's first look at the node (1 s), where a terminal would get the line.
      const r = await gpuq(s.home, ['submit', await s.program('nap.py', 'import time\ntime.sleep(2.5)\n'), '--wait']);
      expect(r.code, r.stderr).toBe(0);
      const id = r.stdout.split('\n')[0] as string;
      expect(r.stderr).toBe(`${started(id)}\n`);
      expect(r.stdout).toMatch(new RegExp(`^${id}\\n${id} succeeded \\(exit 0\\): `));
    } finally {
      await s.cleanup();
    }
  });

  it('on a terminal: running with time and memory, queued with place and holder, cleared for the verdict', async () => {
    const lockDir = await mkdtemp(join(tmpdir(), 'gpuq-wf-locks-'));
    const s = await setup({ nodes: { local: { transport: 'local', gpus: [0], lockDir, python: SYSTEM_PYTHON } } });
    const gate = await makeGate({ dir: s.base, autoCleanup: false });
    try {
      const holder = await gpuq(s.home, [
        'submit',
        await s.program('hold.py', `${gate.pyDef}x = bytearray(64 * 1024 * 1024)\ngate_wait()\n`),
        '--gpus',
        '1',
        '-q',
      ]);
      expect(holder.code, holder.stderr).toBe(0);
      const a = holder.stdout.trim();
      const waitCode = join(s.base, 'wait.code');
      const submitCode = join(s.base, 'submit.code');
      inTerminal(s.home, 'w', ['wait', a], waitCode);
      const next = await s.program('next.py', 'print("next ran", flush=True)\n');
      inTerminal(s.home, 's', ['submit', next, '--gpus', '1', '--wait'], submitCode);
      // wait A: its elapsed time and its memory (the 64 MiB it holds) from the latest sample.
      expect(await until(() => /^running \d[\d.m]*s · \d[\d.]* MiB\s*$/m.test(screen('w')), 30_000), screen('w')).toBe(
        true,
      );
      // submit --wait B: its place in the 1-GPU node's queue and who holds the GPU.
      expect(
        await until(
          () => screen('s').includes(`queued, position 1 on local (waiting for GPU 0, held by job ${a})`),
          30_000,
        ),
        screen('s'),
      ).toBe(true);
      await gate.open();
      expect(
        await until(async () => (await codeOf(waitCode)) !== '' && (await codeOf(submitCode)) !== '', 60_000),
      ).toBe(true);
      expect(await codeOf(waitCode)).toBe('0');
      expect(await codeOf(submitCode)).toBe('0');
      const w = screen('w');
      expect(w).toMatch(new RegExp(`^${a} succeeded \\(exit 0\\): `, 'm'));
      expect(w).not.toMatch(/running \d/);
      const sc = screen('s');
      expect(sc).toMatch(/^gpuq: queued (\w+) on local; waiting for it to end$/m);
      expect(sc).toMatch(/^\w+ succeeded \(exit 0\): /m);
      expect(sc).not.toMatch(/queued, position|running \d/);
    } finally {
      await gate.cleanup();
      await s.cleanup();
      await rm(lockDir, { recursive: true, force: true });
    }
  });
});
