#!/usr/bin/env node
/**
 * Docker isolation's cost, against Docker itself in the same run (issue 14):
 *  1. `gpuq submit --wait --isolation docker` of an empty program, against
 *     `docker run --rm IMAGE true` by hand: goal at most 0.3 s more (medians of a few runs).
 *     Also printed, to tell gpuq's own cost from Docker's: `docker run --rm` by hand with the
 *     flags gpuq gives the container (core/docker-args dockerRunOptions: --network=none, --init,
 *     the mounts and limits), which costs Docker more than the bare run.
 *  2. The sampler (monitor.py) while a container runs: goal at most 0.5% of one core.
 *
 * Runs against the tests' private daemon (test/helpers/dockerd.sh: its own socket and data root
 * under /var/tmp/gpuq-test-docker, the image gpuq-test:bookworm built once from Debian packages;
 * needs root, docker.io and mmdebstrap), stopped afterwards unless a test file still uses it.
 *
 *   node bench/docker.js [--runs 5] [--seconds 15]
 *
 * Exits 1 when a goal is missed.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockerRunOptions } from '../dist/core/docker-args.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gpuq.js');
const CACHE = '/var/tmp/gpuq-test-docker';
const IMAGE = 'gpuq-test:bookworm';
const CLIENT = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const SOCKET = join(CACHE, 'docker.sock');
const SCRIPT = join(ROOT, 'test', 'helpers', 'dockerd.sh');
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const RUNS = arg('--runs', 5);
const SECONDS = arg('--seconds', 15);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/dockerd') || !existsSync('/usr/bin/mmdebstrap')) {
  console.log('MISS  docker: needs root, docker.io and mmdebstrap (apt-get install -y docker.io mmdebstrap)');
  process.exit(1);
}

/** Runs a command; its wall time in ms (throws when it fails). */
function timed(cmd, args, env = process.env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', cwd: ROOT });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

/** Median of `n` runs after one warm-up. */
function median(n, fn) {
  fn();
  const times = [];
  for (let i = 0; i < n; i++) times.push(fn());
  times.sort((a, b) => a - b);
  return times[Math.floor(n / 2)];
}

/** utime+stime+cutime+cstime of a process, in seconds. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK;
}

function findMonitor(dir) {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0');
      if (cmd.some((c) => c.endsWith('monitor.py')) && cmd.includes('watch') && cmd.some((c) => c.startsWith(dir)))
        return Number(name);
    } catch {
      /* gone */
    }
  }
  return null;
}

// The daemon: a shared lock while this bench uses it (as the test helper holds one), then start.
const holder = spawn('flock', ['-s', join(CACHE, 'users.lock'), 'bash', '-c', 'echo held; exec cat'], {
  stdio: ['pipe', 'pipe', 'ignore'],
});
execFileSync('mkdir', ['-p', CACHE]);
await new Promise((res) => holder.stdout.once('data', res));
execFileSync('flock', ['-o', join(CACHE, 'start.lock'), 'bash', SCRIPT, 'start', CACHE, IMAGE, CLIENT], {
  stdio: 'inherit',
});

const dir = mkdtempSync(join(tmpdir(), 'gpuq-bench-docker-'));
const env = { ...process.env, GPUQ_HOME: dir, NO_COLOR: '1' };
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({
    defaults: { isolation: 'docker' },
    nodes: {
      local: {
        transport: 'local',
        python: '/usr/bin/python3',
        docker: { command: [CLIENT, '--host', `unix://${SOCKET}`], image: IMAGE },
      },
    },
  }),
);
writeFileSync(join(dir, 'empty.py'), 'pass\n');
writeFileSync(join(dir, 'idle.py'), `import time\nprint("started", flush=True)\ntime.sleep(${SECONDS + 60})\n`);

let missed = false;
try {
  const byHand = median(RUNS, () => timed(CLIENT, ['--host', `unix://${SOCKET}`, 'run', '--rm', IMAGE, 'true']).ms);
  // gpuq's own `docker run` options (its tokens filled in as the supervisor does as root).
  const work = mkdtempSync(join(tmpdir(), 'gpuq-bench-docker-work-'));
  const fill = { '@GPUQ_WORK@': work, '@GPUQ_UID@': '65534', '@GPUQ_GID@': '65534', '@GPUQ_CPUS@': '1.00' };
  const flags = dockerRunOptions({
    mounts: { role: 'run', work: '@GPUQ_WORK@', data: null },
    jobId: 'benchflags',
    submitter: 'bench@here',
    image: IMAGE,
    network: false,
    memoryBytes: 1 << 30,
    pids: 1024,
    files: 4096,
    fileSizeBytes: 2 ** 32,
    cpuTimeS: null,
    graceS: 10,
    gpus: 0,
    env: {},
    extraFlags: [],
    command: [],
  }).map((a) => a.replace(/@GPUQ_[A-Z]+@/g, (t) => fill[t] ?? t));
  const withFlags = median(
    RUNS,
    () => timed(CLIENT, ['--host', `unix://${SOCKET}`, 'run', '--rm', ...flags, '--', IMAGE, 'true']).ms,
  );
  rmSync(work, { recursive: true, force: true });
  const viaGpuq = median(
    RUNS,
    () => timed(process.execPath, [BIN, 'submit', join(dir, 'empty.py'), '--wait', '-q'], env).ms,
  );
  const extra = (viaGpuq - byHand) / 1000;
  const ok1 = extra <= 0.3;
  missed ||= !ok1;
  console.log(
    `${ok1 ? 'PASS' : 'MISS'}  docker: submit --wait of an empty program ${(viaGpuq / 1000).toFixed(2)} s vs ` +
      `docker run --rm ${(byHand / 1000).toFixed(2)} s: ${extra.toFixed(2)} s more (goal <= 0.3 s; medians of ${RUNS})`,
  );
  console.log(
    `INFO  docker: docker run --rm with gpuq's flags by hand ${(withFlags / 1000).toFixed(2)} s: ` +
      `${((withFlags - byHand) / 1000).toFixed(2)} s of the difference is Docker's, for the flags; ` +
      `${((viaGpuq - withFlags) / 1000).toFixed(2)} s is gpuq's`,
  );

  const id = timed(process.execPath, [BIN, 'submit', join(dir, 'idle.py'), '-q'], env).stdout.trim();
  const jobDir = join(dir, 'nodes', 'local', 'jobs', id);
  for (let i = 0; i < 600 && !readFileSync(join(jobDir, 'stdout.log'), 'utf8').includes('started'); i++)
    await sleep(100);
  const mon = findMonitor(jobDir);
  if (mon === null) throw new Error('no monitor process found');
  await sleep(4500); // past the fast first seconds
  const t1 = process.hrtime.bigint();
  const c1 = cpuSeconds(mon);
  await sleep(SECONDS * 1000);
  const pct = ((cpuSeconds(mon) - c1) / (Number(process.hrtime.bigint() - t1) / 1e9)) * 100;
  const evidence = existsSync(join(jobDir, 'container.evidence'));
  timed(process.execPath, [BIN, 'cancel', id], env);
  spawnSync(process.execPath, [BIN, 'wait', id], { env });
  const ok2 = pct <= 0.5 && evidence;
  missed ||= !ok2;
  console.log(
    `${ok2 ? 'PASS' : 'MISS'}  docker: sampler with a container running ${pct.toFixed(2)}% of one core over ${SECONDS}s ` +
      `(goal <= 0.5%; the container's cgroup ${evidence ? 'read' : 'NOT found'})`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  holder.stdin.end();
  await new Promise((res) => (holder.exitCode !== null ? res() : holder.once('exit', res)));
  spawnSync('flock', [
    '-o',
    join(CACHE, 'start.lock'),
    'flock',
    '-o',
    '-xn',
    join(CACHE, 'users.lock'),
    'bash',
    SCRIPT,
    'stop',
    CACHE,
  ]);
}
process.exit(missed ? 1 : 0);
