#!/usr/bin/env node
/**
 * The live view's own CPU while it watches an idle job (target: under 3% of one core).
 * Submits a job that sleeps, runs `gpuq watch ID` in a real terminal (a private tmux server,
 * 100x30), and reads the CPU time of the gpuq process, and of its helper processes (the tails
 * and the lock waiter the local node runs), from /proc over a fixed window. Run after tsc:
 *
 *   node bench/watch.js [--seconds 20]
 *
 * Prints the figures; exits 1 when the target is missed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gpuq.js');
const TARGET_PCT = 3;
const arg = process.argv.indexOf('--seconds');
const SECONDS = arg > 0 ? Number(process.argv[arg + 1]) : 20;
const SOCKET = `gpuq-bench-watch-${process.pid}`;
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmux = (...args) => execFileSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });

/** utime + stime of one process, in clock ticks, and its parent pid; null when it is gone. */
function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

/** CPU ticks of `root` alone and of `root` with every live descendant. */
function treeTicks(root) {
  const parent = new Map();
  const ticks = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s === null) continue;
    parent.set(Number(name), s.ppid);
    ticks.set(Number(name), s.ticks);
  }
  const inTree = (pid) => {
    for (let p = pid, n = 0; p > 1 && n < 64; p = parent.get(p) ?? 0, n++) if (p === root) return true;
    return false;
  };
  let all = 0;
  for (const [pid, t] of ticks) if (inTree(pid)) all += t;
  return { self: ticks.get(root) ?? 0, all };
}

function gpuq(env, args) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`gpuq ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

const home = mkdtempSync(join(tmpdir(), 'gpuq-bench-watch-'));
const env = { ...process.env, GPUQ_HOME: home, NO_COLOR: '1' };
delete env.FORCE_COLOR;
const program = join(home, 'idle.py');
writeFileSync(program, 'import time\nprint("started", flush=True)\ntime.sleep(600)\n');
const id = gpuq(env, ['submit', program, '-q']);
try {
  tmux(
    'new-session',
    '-d',
    '-s',
    'w',
    '-x',
    '100',
    '-y',
    '30',
    '-e',
    `GPUQ_HOME=${home}`,
    '-e',
    'NO_COLOR=1',
    `exec ${process.execPath} ${BIN} watch ${id}`,
  );
  const pid = Number(tmux('display-message', '-p', '-t', 'w', '#{pane_pid}').trim());
  // Let it start, connect and draw, then measure the steady state.
  for (let i = 0; i < 100 && !tmux('capture-pane', '-p', '-t', 'w').includes('started'); i++) await sleep(100);
  await sleep(2000);
  const a = treeTicks(pid);
  const t0 = process.hrtime.bigint();
  await sleep(SECONDS * 1000);
  const b = treeTicks(pid);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const pct = (ticks) => ((ticks / TICK / wall) * 100).toFixed(2);
  const self = pct(b.self - a.self);
  const all = pct(Math.max(0, b.all - a.all));
  const screen = tmux('capture-pane', '-p', '-t', 'w');
  if (!screen.includes(id)) console.log(`warning: the view did not show job ${id}:\n${screen}`);
  if (!(Number(self) < TARGET_PCT)) process.exitCode = 1;
  console.log(
    `watch: CPU of the live view on an idle job over ${wall.toFixed(1)} s: ${self}% ` +
      `of a core (gpuq process), ${all}% with its helper processes; ` +
      `target < ${TARGET_PCT}%  ${Number(self) < TARGET_PCT ? 'ok' : 'OVER'}`,
  );
  tmux('send-keys', '-t', 'w', 'q');
  await sleep(500);
} finally {
  spawnSync('tmux', ['-L', SOCKET, 'kill-server'], { stdio: 'ignore' });
  spawnSync(process.execPath, [BIN, 'cancel', id], { env, cwd: ROOT });
  rmSync(home, { recursive: true, force: true });
}
