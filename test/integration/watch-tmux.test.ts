/**
 * `gpuq watch` in a real terminal (tmux, 100x30, a private tmux server): a job that prints, grows
 * its memory and is killed under --memory shows its log tail, the memory figure and the verdict;
 * `q` leaves a running job running and says so.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, BIN, gpuq, type Home, makeGate, makeHome, until, writeProgram } from '../helpers/cli.js';

const SOCKET = `gpuq-watch-test-${process.pid}`;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
}

/** The pane as text. */
function screen(session: string): string {
  return tmux('capture-pane', '-p', '-t', session);
}

/**
 * Waits (at most `ms`) until the pane satisfies `check`, capturing it once per look and looking
 * every 200 ms: each look execs a tmux client, and at `until`'s 50 ms two looks per check cost
 * seconds of CPU over a wait on a loaded machine.
 */
async function untilScreen(session: string, check: (text: string) => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (check(screen(session))) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Starts `gpuq watch ID` in a 100x30 pane; its exit code lands in `codeFile`. CI is set, as in CI
 * runs, where ink would otherwise draw only the last frame.
 */
function startWatch(home: Home, session: string, id: string, codeFile: string, ...opts: string[]): void {
  const cmd = `${process.execPath} ${BIN} watch ${id} ${opts.join(' ')}; echo $? > ${codeFile}; sleep 60`;
  tmux(
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    '100',
    '-y',
    '30',
    '-e',
    `GPUQ_HOME=${home.dir}`,
    '-e',
    'NO_COLOR=1',
    '-e',
    'CI=true',
    cmd,
  );
}

let home: Home;
beforeAll(async () => {
  home = await makeHome();
});
afterAll(async () => {
  try {
    tmux('kill-server');
  } catch {
    // no server left
  }
  await home.cleanup();
});

async function submit(name: string, program: string, ...opts: string[]): Promise<string> {
  const r = await gpuq(home, ['submit', await writeProgram(name, program), '-q', ...opts]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('gpuq watch in a terminal', () => {
  it('shows the log tail, the memory against the limit and the oom verdict', async () => {
    // The hog holds at 48 MiB until the test has seen the live screen (a gate, not a race with a
    // program that would die 2.5 s in), then grows past the limit.
    const gate = await makeGate();
    const id = await submit(
      'hog.py',
      `${gate.pyDef}${[
        'import sys, time',
        'chunks = []',
        'for i in range(1000):',
        '    print("step", i, flush=True)',
        '    if i % 5 == 0: print("warn", i, file=sys.stderr, flush=True)',
        '    chunks.append(bytearray(8 * 1024 * 1024))',
        '    if i == 5: gate_wait()',
        '    time.sleep(0.1)',
        '',
      ].join('\n')}`,
      '--memory',
      '200m',
    );
    const code = join(home.dir, 'oom.code');
    startWatch(home, 'oom', id, code);
    // While it runs: the header, RSS against the 200 MiB limit, stdout and stderr (marked) lines.
    expect(
      await untilScreen('oom', (t) => /RSS\s+\d[\d.]* MiB \/ 200 MiB/.test(t) && /^! warn \d+/m.test(t), 30_000),
      screen('oom'),
    ).toBe(true);
    const live = screen('oom');
    expect(live).toContain(id);
    expect(live).toContain('hog.py');
    expect(live).toContain('node local');
    expect(live).toMatch(/^ {2}step \d+/m);
    expect(live).toContain('● connected');
    await gate.open();
    // The end: verdict banner with the class, the exit and the summary; the peak memory figure.
    expect(await untilScreen('oom', (t) => t.includes('✘ oom'), 30_000), screen('oom')).toBe(true);
    const end = screen('oom');
    expect(end).toMatch(/done · oom/);
    expect(end).toMatch(/exit 137 · SIGKILL/);
    expect(end).toMatch(/memory limit of 200 MiB/);
    expect(end).toMatch(/hint: /);
    const peak = end.match(/peak (\d[\d.]*) MiB/);
    expect(Number(peak?.[1])).toBeGreaterThan(150);
    expect(end).toMatch(/step \d+/);
    for (const row of end.split('\n')) expect(row.length).toBeLessThanOrEqual(100);
    // d: the full diagnosis (gpuq diagnose's page) in place of the resources and log.
    tmux('send-keys', '-t', 'oom', 'd');
    expect(await untilScreen('oom', (t) => /Peaks against limits/.test(t), 20_000), screen('oom')).toBe(true);
    expect(screen('oom')).toMatch(/── diagnosis/);
    tmux('send-keys', '-t', 'oom', 'q');
    expect(await until(async () => (await readFile(code, 'utf8').catch(() => '')).trim() !== '', 30_000)).toBe(true);
    expect((await readFile(code, 'utf8')).trim()).toBe('12');
  });

  it('--exit-on-done leaves by itself with the verdict code, the banner left on screen', async () => {
    const id = await submit(
      'exit3.py',
      'import sys, time\nprint("about to fail", flush=True)\ntime.sleep(0.5)\nsys.exit(3)\n',
    );
    const code = join(home.dir, 'done.code');
    startWatch(home, 'done', id, code, '--exit-on-done');
    expect(
      await until(async () => (await readFile(code, 'utf8').catch(() => '')).trim() !== '', 30_000),
      screen('done'),
    ).toBe(true);
    expect((await readFile(code, 'utf8')).trim()).toBe('10');
    expect(screen('done')).toMatch(/✘ failed/);
    expect(screen('done')).toContain('about to fail');
  });

  it('q leaves and the job keeps running', async () => {
    const id = await submit(
      'tick.py',
      'import time\nfor i in range(600):\n    print("tick", i, flush=True)\n    time.sleep(0.2)\n',
    );
    const code = join(home.dir, 'q.code');
    startWatch(home, 'q', id, code);
    expect(await untilScreen('q', (t) => /tick \d+/.test(t), 30_000), screen('q')).toBe(true);
    tmux('send-keys', '-t', 'q', 'q');
    expect(await untilScreen('q', (t) => t.includes('keeps running'), 30_000), screen('q')).toBe(true);
    expect(screen('q')).toContain(`left watch; job ${id} keeps running`);
    expect(await until(async () => (await readFile(code, 'utf8').catch(() => '')).trim() !== '', 30_000)).toBe(true);
    expect((await readFile(code, 'utf8')).trim()).toBe('0');
    const job = JSON.parse((await gpuq(home, ['show', id, '--json'])).stdout) as {
      state: string;
      remote: { pid: number };
    };
    expect(job.state).toBe('running');
    expect(alive(job.remote.pid)).toBe(true);
    await gpuq(home, ['cancel', id]);
  });
});
