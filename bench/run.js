#!/usr/bin/env node
/**
 * `npm run bench`: gpuq's speed targets as ratios against baselines measured in the same run,
 * so a slow or busy machine does not change the verdict. Prints one line per target and a
 * summary, then runs the other benches beside this file (ssh.js, sampler.js, watch.js, queue.js, slurm.js, grading.js, docker.js) when
 * present. Exits 1 when any target is missed or a bench fails, so a speed regression is visible;
 * 0 when every target is met.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gpuq.js');
const { openLedger } = await import(join(ROOT, 'dist', 'ledger', 'ledger.js'));
const { makeJobId } = await import(join(ROOT, 'dist', 'core', 'ids.js'));

/** Runs a command and returns its wall time in ms; throws when it fails. */
function timed(cmd, args, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', cwd: ROOT });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

/** Median wall time of `n` runs (after one warm-up). */
function median(n, fn) {
  fn();
  const times = [];
  for (let i = 0; i < n; i++) times.push(fn());
  times.sort((a, b) => a - b);
  return times[Math.floor(n / 2)];
}

function home() {
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-bench-'));
  return { dir, env: { ...process.env, GPUQ_HOME: dir, NO_COLOR: '1' } };
}

/** Adds `count` finished jobs cloned from `template` through the ledger's own update path. */
async function addPastJobs(ledgerPath, template, count) {
  const ledger = openLedger(ledgerPath);
  const base = Date.parse('2026-01-01T00:00:00Z');
  const batch = 20000;
  for (let done = 0; done < count; done += batch) {
    const n = Math.min(batch, count - done);
    await ledger.update((jobs) => {
      const added = [];
      for (let i = 0; i < n; i++) {
        const at = new Date(base + (done + i) * 1000).toISOString();
        added.push({ ...template, id: makeJobId(randomBytes(8)), createdAt: at, startedAt: at, endedAt: at });
      }
      return { jobs: [...jobs, ...added], result: undefined };
    });
  }
}

const results = [];
function report(name, value, goal, unit, ok) {
  results.push({ name, ok });
  console.log(`${ok ? 'PASS' : 'MISS'}  ${name}: ${value.toFixed(2)}${unit} (goal ${goal})`);
}

const empty = join(mkdtempSync(join(tmpdir(), 'gpuq-bench-prog-')), 'empty.py');
writeFileSync(empty, 'pass\n');

// A finished job to clone, and its job folder for the by-hand baseline.
const h0 = home();
const first = timed(process.execPath, [BIN, 'submit', empty, '--wait', '--json'], h0.env);
const template = JSON.parse(first.stdout);

// 1. gpuq list --json against node -e 0, with 3 and with 10,000 jobs.
const nodeMs = median(9, () => timed(process.execPath, ['-e', '0']).ms);
for (const count of [3, 10000]) {
  const h = home();
  await addPastJobs(join(h.dir, 'ledger.json'), template, count);
  const listMs = median(9, () => timed(process.execPath, [BIN, 'list', '--json'], h.env).ms);
  const ratio = listMs / nodeMs;
  report(
    `list --json with ${count} jobs vs node -e 0 (${listMs.toFixed(0)} ms vs ${nodeMs.toFixed(0)} ms)`,
    ratio,
    '<= 2.5x',
    'x',
    ratio <= 2.5,
  );
  rmSync(h.dir, { recursive: true, force: true });
}

// 2. submit --wait of an empty program against running its rendered wrapper by hand.
const jobDir = template.remote.dir;
const byHand = () => {
  const copy = mkdtempSync(join(tmpdir(), 'gpuq-bench-hand-'));
  for (const f of ['run.sh', 'monitor.py', 'work']) cpSync(join(jobDir, f), join(copy, f), { recursive: true });
  const t = timed('bash', [
    '-c',
    'cd "$1" && exec 9>>job.lock && flock -x 9 && bash ./run.sh </dev/null >supervisor.log 2>&1',
    'bench',
    copy,
  ]).ms;
  rmSync(copy, { recursive: true, force: true });
  return t;
};
const bySubmit = () => timed(process.execPath, [BIN, 'submit', empty, '--wait', '-q'], h0.env).ms;
// interleaved, so that a change in the machine's load hits both sides alike
const hands = [];
const submits = [];
byHand();
bySubmit();
for (let i = 0; i < 9; i++) {
  hands.push(byHand());
  submits.push(bySubmit());
}
const mid = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const handMs = mid(hands);
const submitMs = mid(submits);
const extra = (submitMs - handMs) / 1000;
report(
  `submit --wait of an empty program minus its wrapper by hand (${submitMs.toFixed(0)} ms vs ${handMs.toFixed(0)} ms)`,
  extra,
  '<= 0.3 s more',
  ' s',
  extra <= 0.3,
);

// 3. submit with 100 against 100,000 past jobs.
const submitWith = async (count) => {
  const h = home();
  await addPastJobs(join(h.dir, 'ledger.json'), template, count);
  const ms = median(5, () => timed(process.execPath, [BIN, 'submit', empty, '-q'], h.env).ms);
  return { ms, h };
};
const small = await submitWith(100);
const large = await submitWith(100000);
const ratio = large.ms / small.ms;
report(
  `submit with 100,000 vs 100 past jobs (${large.ms.toFixed(0)} ms vs ${small.ms.toFixed(0)} ms)`,
  ratio,
  '<= 1.2x',
  'x',
  ratio <= 1.2,
);
for (const h of [small.h, large.h, h0]) {
  spawnSync(
    process.execPath,
    [
      BIN,
      'wait',
      ...JSON.parse(timed(process.execPath, [BIN, 'list', '--json', '--state', 'running'], h.env).stdout).map(
        (j) => j.id,
      ),
    ],
    { env: h.env },
  );
  rmSync(h.dir, { recursive: true, force: true });
}

console.log(`\nfoundation: ${results.filter((r) => r.ok).length}/${results.length} targets met`);

const failedBenches = [];
for (const other of [
  'sampler.js',
  'watch.js',
  'ssh.js',
  'include.js',
  'get.js',
  'queue.js',
  'slurm.js',
  'grading.js',
  'docker.js',
]) {
  const path = join(dirname(fileURLToPath(import.meta.url)), other);
  if (!existsSync(path)) continue;
  console.log(`\n== ${other}`);
  const r = spawnSync(process.execPath, [path], { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) failedBenches.push(`${other} (exit ${r.status ?? r.signal})`);
}

const missed = results.filter((r) => !r.ok).map((r) => r.name);
if (missed.length > 0 || failedBenches.length > 0) {
  console.log(`\nbench: MISSED ${[...missed, ...failedBenches].join('; ')}`);
  process.exit(1);
}
console.log('\nbench: every target met');
