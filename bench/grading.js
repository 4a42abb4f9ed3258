#!/usr/bin/env node
/**
 * The grading step's overhead (issue 13) on the embedded local node, with the example
 * competition (examples/blobs): run after tsc,
 *
 *   node bench/grading.js [--runs 5]
 *
 * Measures, as medians of `--runs` runs after one warm-up each:
 *   A. `gpuq submit solution.py --competition blobs --wait` (submit → score),
 *   B. the same program submitted without a competition (`--wait`: submit → verdict, no grading),
 *   C. the grader run by hand on the same files (`python3 grade.py SUBMISSION ANSWERS FEEDBACK`).
 * The overhead is A − B − C: what gpuq adds to grading (the grading state, the submission
 * check and copy, the fingerprints, the limits, the extra reads). Goal: at most 0.3 s. It also
 * prints the node-side part alone (gradings/1/status.json's duration minus C). Exits 1 on a miss.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gpuq.js');
const EX = join(ROOT, 'examples', 'blobs');
const CONFIG = join(EX, 'gpuq.config.json');
const i = process.argv.indexOf('--runs');
const RUNS = i > 0 ? Number(process.argv[i + 1]) : 5;
const GOAL_S = 0.3;
const PYTHON =
  ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => {
    try {
      readFileSync(p);
      return true;
    } catch {
      return false;
    }
  }) ?? 'python3';

const home = mkdtempSync(join(tmpdir(), 'gpuq-bench-grading-'));
const env = { ...process.env, GPUQ_HOME: home, NO_COLOR: '1', PATH: `${dirname(PYTHON)}:${process.env.PATH}` };

function timed(args, ok = [0]) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(args[0], args.slice(1), { env, encoding: 'utf8', cwd: ROOT });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!ok.includes(r.status)) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const submitGraded = () =>
  timed([
    process.execPath,
    BIN,
    '--config',
    CONFIG,
    'submit',
    join(EX, 'solution.py'),
    '--competition',
    'blobs',
    '--wait',
    '--json',
  ]);
// The same program without grading: it needs $GPUQ_DATA, given here by --env.
const submitPlain = () =>
  timed([
    process.execPath,
    BIN,
    '--config',
    CONFIG,
    'submit',
    join(EX, 'solution.py'),
    '--env',
    `GPUQ_DATA=${join(EX, 'data')}`,
    '--wait',
    '--json',
  ]);

try {
  const graded = [];
  const plain = [];
  const byHand = [];
  const nodeSide = [];
  for (let run = 0; run <= RUNS; run++) {
    const a = submitGraded();
    const job = JSON.parse(a.stdout);
    if (job.verdict?.class !== 'succeeded' || typeof job.score !== 'number')
      throw new Error(`the graded job did not score: ${JSON.stringify(job.verdict)}`);
    const b = submitPlain();
    // The grader by hand, on the very files the grading used.
    const g = join(job.remote.dir, 'gradings', '1');
    const fb = mkdtempSync(join(tmpdir(), 'gpuq-bench-feedback-'));
    const c = timed([PYTHON, join(EX, 'grade.py'), join(g, 'submission'), join(EX, 'answers'), fb], [42]);
    rmSync(fb, { recursive: true, force: true });
    const st = JSON.parse(readFileSync(join(g, 'status.json'), 'utf8'));
    if (run === 0) continue; // warm-up: caches, the fingerprint cache
    graded.push(a.ms);
    plain.push(b.ms);
    byHand.push(c.ms);
    nodeSide.push(st.endedAtMs - st.startedAtMs);
  }
  const A = median(graded);
  const B = median(plain);
  const C = median(byHand);
  const overheadS = (A - B - C) / 1000;
  const nodeS = (median(nodeSide) - C) / 1000;
  console.log(
    `submit → score ${(A / 1000).toFixed(2)} s, without grading ${(B / 1000).toFixed(2)} s, grader by hand ${(C / 1000).toFixed(2)} s (medians of ${RUNS})`,
  );
  console.log(`node side alone (grade.py's run minus the grader by hand): ${nodeS.toFixed(2)} s`);
  const ok = overheadS <= GOAL_S;
  console.log(`${ok ? 'PASS' : 'MISS'}  grading overhead: ${overheadS.toFixed(2)} s (goal <= ${GOAL_S} s)`);
  process.exitCode = ok ? 0 : 1;
} finally {
  rmSync(home, { recursive: true, force: true });
}
