/**
 * The rendered supervisor (templates/wrapper.sh) run directly in a temp job folder, without the
 * CLI: what the job's environment holds (thread pools by CPU share, CUDA_VISIBLE_DEVICES, --env
 * overrides, the marker) and what status.json records. The CLI paths are in
 * test/integration/hostile*.test.ts.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMonitorFile, parseSampleLine, parseStatusFile } from '../../src/core/job-files.js';
import type { Limits } from '../../src/core/types.js';
import { renderWrapper, type WrapperSpec } from '../../src/node/wrapper.js';
import { builtinLimits } from '../../src/core/limits.js';
import { REPO } from '../helpers/cli.js';

const TEMPLATE = readFileSync(join(REPO, 'templates', 'wrapper.sh'), 'utf8');
const LIMITS: Limits = {
  ...builtinLimits(),
  timeoutS: 20,
  graceS: 1,
  memoryBytes: null,
  pids: null,
  files: null,
  fileSizeBytes: null,
};
const PRINT_ENV = `import json, os\nprint(json.dumps(dict(os.environ)))\n`;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Renders and runs the supervisor for `program` until it exits; returns status and stdout. */
function runWrapper(
  program: string,
  spec: Partial<WrapperSpec> & { enterCpuCgroup?: string; path?: string } = {},
): { status: Record<string, unknown>; stdout: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-wrapper-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'work'));
  writeFileSync(join(dir, 'work', 'prog.py'), program);
  copyFileSync(join(REPO, 'templates', 'monitor.py'), join(dir, 'monitor.py'));
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const { enterCpuCgroup, path, ...rest } = spec;
  const script = renderWrapper(TEMPLATE, {
    jobId: `wr${Math.random().toString(36).slice(2, 10)}`,
    command: [python, 'prog.py'],
    env: {},
    limits: LIMITS,
    cpuShare: { num: 1, den: 1 },
    cudaDevices: null,
    useCgroups: false,
    ...rest,
  });
  writeFileSync(join(dir, 'run.sh'), script, { mode: 0o700 });
  const enter = enterCpuCgroup ? `echo $$ > '${enterCpuCgroup}/cgroup.procs'; ` : '';
  // A stand-in dmesg comes with a kernel OOM-kill counter that cannot be read, so that the
  // supervisor reads the log whether or not the machine's counter moved (kernel_oom_evidence).
  const env =
    path === undefined
      ? process.env
      : { ...process.env, PATH: `${path}:${process.env.PATH ?? ''}`, GPUQ_VMSTAT: join(path, 'no-vmstat') };
  execFileSync('bash', ['-c', `${enter}exec setsid -w bash ./run.sh`], {
    cwd: dir,
    stdio: 'ignore',
    timeout: 30_000,
    env,
  });
  return {
    status: JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) as Record<string, unknown>,
    stdout: readFileSync(join(dir, 'stdout.log'), 'utf8'),
    dir,
  };
}

/** Root on a cgroup v1 cpu hierarchy: a CPU quota can be set up for the supervisor. */
const CPU_CGROUP_V1 = process.getuid?.() === 0 && existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');

/** Cores the supervisor sees (affinity), as `nproc` counts them. */
const CORES = Number(execFileSync('nproc').toString().trim()) || cpus().length;

describe('the supervisor, run directly', () => {
  it("gives thread pools the job's share of the cores, at least 1", () => {
    const whole = JSON.parse(runWrapper(PRINT_ENV).stdout) as Record<string, string>;
    for (const k of ['OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'NUMEXPR_NUM_THREADS'])
      expect(whole[k]).toBe(String(CORES));
    const quarter = JSON.parse(
      runWrapper(PRINT_ENV, { cpuShare: { num: 1, den: 4 }, cudaDevices: '2' }).stdout,
    ) as Record<string, string>;
    expect(quarter.OMP_NUM_THREADS).toBe(String(Math.max(1, Math.floor(CORES / 4))));
    expect(quarter.CUDA_VISIBLE_DEVICES).toBe('2');
  });

  it.runIf(CPU_CGROUP_V1 && CORES > 1)('caps the thread default by a CPU quota on its cgroup (v1)', () => {
    const group = join('/sys/fs/cgroup/cpu', `gpuq-test-${process.pid}`);
    mkdirSync(group);
    try {
      writeFileSync(join(group, 'cpu.cfs_period_us'), '100000');
      writeFileSync(join(group, 'cpu.cfs_quota_us'), '50000'); // half a core: rounds up to 1
      const env = JSON.parse(runWrapper(PRINT_ENV, { enterCpuCgroup: group }).stdout) as Record<string, string>;
      expect(env.OMP_NUM_THREADS).toBe('1');
    } finally {
      rmdirSync(group);
    }
  });

  it('on cgroup v2 sets memory.max, swap and pids.max, and reads oom_kill, peak and refusals back', () => {
    // A stand-in v2 hierarchy of plain files: the supervisor's v2 path without a v2 machine.
    const root = mkdtempSync(join(tmpdir(), 'gpuq-fake-cgroup2-'));
    dirs.push(root);
    const jobId = `wr${Math.random().toString(36).slice(2, 10)}`;
    const leaf = join(root, 'gpuq', jobId);
    mkdirSync(leaf, { recursive: true });
    writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
    writeFileSync(join(leaf, 'pids.max'), 'max\n');
    writeFileSync(join(leaf, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    writeFileSync(join(leaf, 'memory.peak'), '67108864\n');
    writeFileSync(join(leaf, 'pids.events'), 'max 3\n');
    writeFileSync(join(leaf, 'pids.peak'), '9\n');
    const { status } = runWrapper('print("ok")\n', {
      jobId,
      useCgroups: true,
      cgroupRoot: root,
      limits: { ...LIMITS, memoryBytes: 64 << 20, pids: 32 },
    });
    expect(status).toMatchObject({
      cgroup: 'v2',
      oomKills: 1,
      memoryPeakBytes: 67108864,
      pidsRefused: 3,
      pidsPeak: 9,
      exitCode: 0,
    });
    expect(readFileSync(join(leaf, 'memory.max'), 'utf8').trim()).toBe(String(64 << 20));
    expect(readFileSync(join(leaf, 'memory.swap.max'), 'utf8').trim()).toBe('0');
    expect(readFileSync(join(leaf, 'pids.max'), 'utf8').trim()).toBe('32');
    expect(readFileSync(join(root, 'gpuq', 'cgroup.subtree_control'), 'utf8')).toBe('+memory\n+pids\n');
    // The job's process was put in the leaf.
    expect(readFileSync(join(leaf, 'cgroup.procs'), 'utf8').trim()).toBe(String(status.pid));
  });

  it("keeps the kernel OOM-killer lines about the job's pids, and no others", () => {
    // A stand-in dmesg: an OOM kill of a pid the monitor saw in the tree (pids.seen, in the
    // job folder, the supervisor's working directory), one of an unrelated pid, and noise.
    const bin = mkdtempSync(join(tmpdir(), 'gpuq-fake-dmesg-'));
    dirs.push(bin);
    writeFileSync(
      join(bin, 'dmesg'),
      [
        '#!/bin/bash',
        'up=$(cut -d" " -f1 /proc/uptime); t=${up%.*}; date +%s%3N >dmesg.ran',
        'pid=$(tail -n 1 pids.seen)',
        'echo "[$t.000001] python3 invoked oom-killer: ' +
          'gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0"',
        'echo "[$t.000002] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,' +
          'mems_allowed=0,global_oom,task_memcg=/,task=python3,pid=$pid,uid=0"',
        'echo "[$t.000003] Out of memory: Killed process $pid (python3) ' +
          'total-vm:9000000kB, anon-rss:8000000kB, file-rss:0kB, shmem-rss:0kB, ' +
          'UID:0 pgtables:16000kB oom_score_adj:0"',
        'echo "[$t.000004] Out of memory: Killed process 4194303 (other) total-vm:1kB, ' +
          'anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    // The program ends only once the monitor has recorded its pid (a gate, not a fixed sleep):
    // on a loaded machine the monitor may take seconds to start.
    const waitSeen = [
      'import os, time',
      'deadline = time.time() + 25',
      'while time.time() < deadline:',
      '    try:',
      '        if str(os.getpid()) in open("../pids.seen").read().split(): break',
      '    except OSError:',
      '        pass',
      '    time.sleep(0.05)',
      '',
    ].join('\n');
    // boundary none: under a leased uid the program cannot read ../pids.seen and waited out its 25 s.
    const { status, dir } = runWrapper(waitSeen, { path: bin, boundary: 'none' });
    const lines = status.kernelOom as string[];
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/oom-kill:.*pid=\d+,uid=0/);
    expect(lines[1]).toMatch(/Out of memory: Killed process \d+ \(python3\)/);
    expect(lines.join('\n')).not.toContain('4194303');
    // The first line's kernel time, on the epoch clock: the stand-in logs "now" (its uptime cut to
    // the second) when the supervisor runs it, after the job and its sweep (seconds later under load).
    const at = status.kernelOomAtMs as number;
    const ran = Number(readFileSync(join(dir, 'dmesg.ran'), 'utf8'));
    expect(at).toBeGreaterThanOrEqual(Math.max(status.startedAtMs as number, ran - 1000) - 500);
    expect(at).toBeLessThanOrEqual(ran + 500);
  });

  it('records when the wall-clock limit fired (limitFiredAtMs), from the timer', () => {
    const { status } = runWrapper('import time\ntime.sleep(30)\n', { limits: { ...LIMITS, timeoutS: 1 } });
    expect(status).toMatchObject({ timedOut: true, limitFired: 'timeout' });
    const fired = status.limitFiredAtMs as number;
    expect(fired).toBeGreaterThanOrEqual((status.startedAtMs as number) + 1000);
    expect(fired).toBeLessThanOrEqual(status.endedAtMs as number);
  });

  it('lets --env values win over the defaults, literally', () => {
    const env = JSON.parse(
      runWrapper(PRINT_ENV, { env: { MKL_NUM_THREADS: '3', ODD: "$(touch /tmp/gpuq-pwned) `id` 'q'" } }).stdout,
    ) as Record<string, string>;
    expect(env.MKL_NUM_THREADS).toBe('3');
    expect(env.OMP_NUM_THREADS).toBe(String(CORES));
    expect(env.ODD).toBe("$(touch /tmp/gpuq-pwned) `id` 'q'");
    expect(env.GPUQ_JOB_ID).toMatch(/^wr/);
    expect(env.PYTHONUNBUFFERED).toBe('1');
    expect(env.PYTHONDONTWRITEBYTECODE).toBe('1');
    expect(env.TMPDIR).toMatch(/\/tmp$/);
  });

  it('writes a complete status.json, as a subreaper whose monitor sweeps what the job left', () => {
    // An escapee: its own session, an empty environment (no marker): only the subreaper finds it.
    const program = [
      'import subprocess, sys',
      'd = subprocess.DEVNULL',
      'print(subprocess.Popen(["setsid", "sleep", "300"], env={}, stdin=d, stdout=d, stderr=d).pid)',
      'sys.exit(3)',
    ].join('\n');
    const { status, stdout, dir } = runWrapper(program);
    expect(status).toMatchObject({
      version: 1,
      state: 'exited',
      exitCode: 3,
      signal: null,
      timedOut: false,
      cancelled: false,
      limitFired: null,
      killedAfterGrace: false,
      cgroup: null,
      oomKills: null,
      pidsRefused: null,
      kernelOom: [],
      memoryPeakBytes: null,
      subreaper: true,
      leftovers: 1,
      limitFiredAtMs: null,
      kernelOomAtMs: null,
    });
    for (const k of ['supervisorPid', 'pid', 'pgid', 'startedAtMs', 'endedAtMs'])
      expect(typeof status[k]).toBe('number');
    expect(typeof status.cpuSeconds).toBe('number');
    // The monitor left its peaks and at least one sample, and did the final sweep itself (asked on
    // its stdin: no `monitor.py sweep` start); the escapee is dead (a zombie at most, for init).
    const monitor = JSON.parse(readFileSync(join(dir, 'monitor.json'), 'utf8')) as Record<string, number>;
    expect(monitor.samples).toBeGreaterThanOrEqual(1);
    expect(readFileSync(join(dir, 'monitor.log'), 'utf8')).toContain('monitor.py: the final sweep killed 1\n');
    const escapee = Number(stdout.trim());
    expect(escapee).toBeGreaterThan(1);
    const stat = existsSync(`/proc/${escapee}/stat`) ? readFileSync(`/proc/${escapee}/stat`, 'utf8') : '';
    if (stat.includes('(sleep)')) expect(stat.split(') ')[1]?.[0]).toBe('Z');
  });

  it('writes status.json one field a line, the state on the first, in the shapes the client checks', () => {
    const { dir } = runWrapper('print("hi")\n');
    const text = readFileSync(join(dir, 'status.json'), 'utf8');
    const lines = text.trimEnd().split('\n');
    // The launcher reads the first line alone, and `gpuq nodes` greps, for "state":"running"/"exited".
    expect(lines[0]).toBe('{"state":"exited",');
    expect(lines.at(-1)).toBe('}');
    for (const line of lines.slice(1, -1)) expect(line).toMatch(/^"[A-Za-z]+":.+$/);
    expect(lines.length - 1).toBe(Object.keys(JSON.parse(text) as object).length);
    // What the supervisor and the monitor write passes the shapes the client trusts them by.
    expect(parseStatusFile(text)).not.toBeNull();
    expect(parseMonitorFile(readFileSync(join(dir, 'monitor.json'), 'utf8'))).not.toBeNull();
    const samples = readFileSync(join(dir, 'samples.jsonl'), 'utf8').trimEnd().split('\n');
    expect(samples.length).toBeGreaterThanOrEqual(1);
    for (const line of samples) expect(parseSampleLine(line), line).not.toBeNull();
  });
});
