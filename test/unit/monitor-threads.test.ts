/**
 * templates/monitor.py against a process whose main thread has exited (a C-level pthread_exit)
 * while its other threads run: /proc/PID/stat says Z, its RSS reads 0 and its environ empty, yet
 * it lives and holds memory. The monitor must count it live, with its memory, find it by its
 * marker, and kill it (memory watch, sweep). A real zombie stays dead. The hostile program is
 * test/fixtures/hostile/main_thread_exit.py, run here directly under python3.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, until } from '../helpers/cli.js';
import { anyThreadLive, stateOf } from '../helpers/hostile.js';

const MONITOR = join(REPO, 'templates', 'monitor.py');
const PROGRAM = join(REPO, 'test', 'fixtures', 'hostile', 'main_thread_exit.py');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const MIB = 1024 * 1024;

/** Runs `code` with the monitor module loaded as `m`; the code prints one JSON document. */
function py<T = unknown>(code: string): T {
  const script = [
    'import importlib.util, json, os, sys, time',
    `spec = importlib.util.spec_from_file_location("monitor", ${JSON.stringify(MONITOR)})`,
    'm = importlib.util.module_from_spec(spec)',
    'spec.loader.exec_module(m)',
    'def out(x): print(json.dumps(x))',
    code,
  ].join('\n');
  return JSON.parse(execFileSync(PYTHON, ['-c', script], { encoding: 'utf8' })) as T;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts main_thread_exit.py with the job marker; resolves once its stdout holds `line`. */
async function start(args: string[], jobId: string, line: RegExp): Promise<{ child: ChildProcess; out: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'gpuq-threads-'));
  dirs.push(cwd);
  const child = spawn(PYTHON, [PROGRAM, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, GPUQ_JOB_ID: jobId },
  });
  children.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (line.test(out)) resolve();
    });
    child.on('exit', (code) => (line.test(out) ? resolve() : reject(new Error(`exited ${code}: ${out}`))));
  });
  return { child, out };
}

function exitSignal(child: ChildProcess): Promise<NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
}

describe('monitor.py: a process whose main thread has exited', () => {
  it('really shows Z for its main thread while a thread of it runs', async () => {
    const { child, out } = await start(['hold', '32', '60'], `thr-z-${process.pid}`, /holding 32 MiB/);
    const pid = child.pid as number;
    expect(out).toContain('main thread state: Z');
    expect(stateOf(`/proc/${pid}/stat`)).toBe('Z');
    expect(anyThreadLive(pid)).toBe(true);
    child.kill('SIGKILL');
    expect(await exitSignal(child)).toBe('SIGKILL');
  });

  it('is live, with the RSS, PSS, descriptors and environment its live thread shows', async () => {
    const jobId = `thr-read-${process.pid}`;
    const { child } = await start(['hold', '64', '60'], jobId, /holding 64 MiB/);
    const pid = child.pid as number;
    const r = py<Record<string, unknown>>(
      `st = m.read_stat(${pid})
out({"state": st.state, "dead": st.is_dead(), "tid": st.live_tid,
     "rss": st.rss_pages * os.sysconf("SC_PAGE_SIZE"), "pss": m.tree_pss([${pid}]),
     "fds": m.count_fds(${pid}, st), "marker": m.environ_has(${pid}, b"\\0GPUQ_JOB_ID=${jobId}\\0"),
     "value": m.environ_value(${pid}, "GPUQ_JOB_ID")})`,
    );
    expect(r.state).toBe('Z');
    expect(r.dead).toBe(false);
    expect(r.tid).toBeGreaterThan(pid);
    expect(r.rss).toBeGreaterThan(64 * MIB);
    // one memory map: the process's RSS once, not once per thread
    expect(r.rss).toBeLessThan(1024 * MIB);
    expect(r.pss).toBeGreaterThan(64 * MIB);
    expect(r.fds).toBeGreaterThan(0);
    expect(r.marker).toBe(true);
    expect(r.value).toBe(jobId);
    child.kill('SIGKILL');
    await exitSignal(child);
  });

  it('is found by a full scan and by a walk of the known tree, as a live member', async () => {
    const jobId = `thr-scan-${process.pid}`;
    const { child } = await start(['hold', '16', '60'], jobId, /holding 16 MiB/);
    const pid = child.pid as number;
    const r = py<{ scan: number[]; walk: number[] }>(
      `f = m.TreeFinder(4194304, "${jobId}", [], m.ancestors(os.getpid()), main_has_ended=True)
members, _ = f.scan()
live = dict((p, st.starttime) for p, st in members.items() if not st.is_dead())
walked, _ = f.walk(live)
out({"scan": sorted(live), "walk": sorted(p for p, st in walked.items() if not st.is_dead())})`,
    );
    expect(r.scan).toEqual([pid]);
    expect(r.walk).toEqual([pid]);
    child.kill('SIGKILL');
    await exitSignal(child);
  });

  it('a real zombie (ended, not reaped) is still dead', () => {
    const r = py<{ state: string; dead: boolean; tid: number | null }>(
      `pid = os.fork()
if pid == 0:
    os._exit(0)
for _ in range(400):
    st = m.read_stat(pid)
    if st.state == "Z":
        break
    time.sleep(0.005)
out({"state": st.state, "dead": st.is_dead(), "tid": st.live_tid})
os.waitpid(pid, 0)`,
    );
    expect(r).toEqual({ state: 'Z', dead: true, tid: null });
  });

  it('the memory watch counts its memory and kills it over --memory-bytes', async () => {
    const jobId = `thr-watch-${process.pid}`;
    const { child } = await start(['hold', '96', '120'], jobId, /holding 96 MiB/);
    const pid = child.pid as number;
    const dir = mkdtempSync(join(tmpdir(), 'gpuq-threads-watch-'));
    dirs.push(dir);
    const watch = new Promise<number | null>((resolve) => {
      const p = execFile(
        PYTHON,
        [MONITOR, 'watch', '--dir', dir, '--job-id', jobId, '--pid', String(pid), '--memory-bytes', String(48 * MIB)],
        { timeout: 60_000 },
      );
      p.on('exit', (code) => resolve(code));
    });
    expect(await exitSignal(child)).toBe('SIGKILL');
    expect(await watch).toBe(0);
    expect(Number(readFileSync(join(dir, 'memory.fired'), 'utf8').trim())).toBeGreaterThan(48 * MIB);
    const monitor = JSON.parse(readFileSync(join(dir, 'monitor.json'), 'utf8')) as Record<string, unknown>;
    expect(monitor.memoryWatchFired).toBe(true);
    expect(Number(monitor.peakRssBytes)).toBeGreaterThan(48 * MIB);
  }, 90_000);

  it('the sweep kills one that left the session, found by its marker, and counts it', async () => {
    const jobId = `thr-sweep-${process.pid}`;
    const { child, out } = await start(['linger'], jobId, /lingerer \d+: main thread state Z/);
    const lingerer = Number(/lingerer (\d+)/.exec(out)?.[1]);
    expect(anyThreadLive(lingerer)).toBe(true);
    expect(stateOf(`/proc/${lingerer}/stat`)).toBe('Z');
    await exitSignal(child);
    // The main pid the sweep is told about has long ended: a pid that cannot be live.
    const swept = execFileSync(PYTHON, [MONITOR, 'sweep', '--job-id', jobId, '--pid', '4194304'], {
      encoding: 'utf8',
    });
    const gone = await until(() => !anyThreadLive(lingerer), 5000);
    if (!gone) process.kill(lingerer, 'SIGKILL'); // leave no lingerer behind a failure
    expect(swept.trim()).toBe('1');
    expect(gone, `pid ${lingerer} survived the sweep`).toBe(true);
  });
});
