#!/usr/bin/env node
/**
 * The resource sampler's cost (templates/monitor.py `watch`), as a percentage of one core.
 *
 * Renders the real supervisor (dist/node/wrapper.js; build first) for an idle job (a sleeping
 * python program) in a temp job folder, runs it, finds its monitor process, lets the first fast
 * seconds pass, then reads the monitor's utime+stime (and its children's) from /proc/PID/stat
 * over a window and prints CPU seconds per wall second. Run twice: on this machine as it is,
 * and with extra idle processes on it (a busy GPU node has hundreds), since the sampler scans
 * all of /proc once a second.
 *
 *   node bench/sampler.js [--seconds 20] [--extra-procs 500]
 *
 * Prints one line per run; the goal is under 1% of a core: exits 1 when a run misses it.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const { renderWrapper } = await import(join(REPO, 'dist', 'node', 'wrapper.js'));
const { builtinLimits } = await import(join(REPO, 'dist', 'core', 'limits.js'));
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const SECONDS = arg('--seconds', 20);
const EXTRA = arg('--extra-procs', 500);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** utime+stime+cutime+cstime of a process, in seconds. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK;
}

/** The pid of the `monitor.py watch` process running for a job folder. */
function findMonitor(dir) {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0');
      if (cmd.some((c) => c.endsWith('monitor.py')) && cmd.includes('watch') && cmd.includes(dir)) return Number(name);
    } catch {
      /* gone */
    }
  }
  return null;
}

/** Runs one idle job under the supervisor and measures its monitor; returns percent of a core. */
async function measure(seconds) {
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-bench-sampler-'));
  mkdirSync(join(dir, 'work'));
  writeFileSync(join(dir, 'work', 'idle.py'), `import time\ntime.sleep(${seconds + 30})\n`);
  copyFileSync(join(REPO, 'templates', 'monitor.py'), join(dir, 'monitor.py'));
  const limits = {
    ...builtinLimits(),
    timeoutS: seconds + 20,
    graceS: 1,
    memoryBytes: 1 << 30,
    pids: null,
    files: null,
    fileSizeBytes: null,
  };
  const script = renderWrapper(readFileSync(join(REPO, 'templates', 'wrapper.sh'), 'utf8'), {
    jobId: `bench${process.pid}`,
    command: [PYTHON, 'idle.py'],
    env: {},
    limits,
    cpuShare: { num: 1, den: 1 },
    cudaDevices: null,
    useCgroups: false, // the memory watch runs too: the most the monitor ever does
  });
  writeFileSync(join(dir, 'run.sh'), script, { mode: 0o700 });
  const sup = spawn('setsid', ['-w', 'bash', './run.sh'], { cwd: dir, stdio: 'ignore' });
  const ended = new Promise((r) => sup.on('exit', r));
  try {
    let mon = null;
    for (let i = 0; i < 100 && mon === null; i++) {
      await sleep(50);
      mon = findMonitor(dir);
    }
    if (mon === null) throw new Error('no monitor process found');
    const t0 = process.hrtime.bigint();
    const c0 = cpuSeconds(mon);
    await sleep(4500); // the fast first seconds
    const t1 = process.hrtime.bigint();
    const c1 = cpuSeconds(mon);
    await sleep(seconds * 1000);
    const t2 = process.hrtime.bigint();
    const c2 = cpuSeconds(mon);
    const samples = readFileSync(join(dir, 'samples.jsonl'), 'utf8').trim().split('\n').length;
    return {
      fast: ((c1 - c0) / (Number(t1 - t0) / 1e9)) * 100,
      steady: ((c2 - c1) / (Number(t2 - t1) / 1e9)) * 100,
      samples,
    };
  } finally {
    try {
      execFileSync('bash', ['-c', `kill -USR1 ${sup.pid}`]); // a cancel: the supervisor ends the job
    } catch {
      /* gone */
    }
    await ended;
    rmSync(dir, { recursive: true, force: true });
  }
}

const procCount = () => readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;

const GOAL_PCT = 1;
let missed = false;
let r = await measure(SECONDS);
missed ||= !(r.steady < GOAL_PCT);
console.log(
  `${r.steady < GOAL_PCT ? 'PASS' : 'MISS'}  sampler (monitor.py watch, memory watch on): ` +
    `${r.steady.toFixed(2)}% of one core at ~1 Hz over ${SECONDS}s ` +
    `(${r.fast.toFixed(2)}% in the fast first seconds; ${procCount()} processes on the machine; ${r.samples} samples)`,
);

if (EXTRA > 0) {
  const sleepers = [];
  for (let i = 0; i < EXTRA; i++) sleepers.push(spawn('sleep', [String(SECONDS + 60)], { stdio: 'ignore' }));
  await sleep(500);
  try {
    r = await measure(SECONDS);
    missed ||= !(r.steady < GOAL_PCT);
    console.log(
      `${r.steady < GOAL_PCT ? 'PASS' : 'MISS'}  sampler with ${EXTRA} extra idle processes: ` +
        `${r.steady.toFixed(2)}% of one core at ~1 Hz ` +
        `(${r.fast.toFixed(2)}% in the fast first seconds; ${procCount()} processes on the machine)`,
    );
  } finally {
    for (const s of sleepers) s.kill('SIGKILL');
  }
}
process.exit(missed ? 1 : 0);
