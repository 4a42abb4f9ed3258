#!/usr/bin/env node
/**
 * A Slurm node's speed targets, on a private one-node Slurm cluster started here (as
 * test/helpers/slurm.ts does: munged, slurmctld, slurmd as root, state in a temp folder). Run
 * after tsc, as root, with slurm-wlm and munge installed:
 *
 *   node bench/slurm.js [--runs 3]
 *
 * 1. Job end → verdict: a program that prints its end time and exits; `gpuq submit --wait` ends
 *    (the verdict recorded) at most 1 s after the program ended. Baseline in the same run:
 *    `sbatch --wait` of the same program (Slurm polls: seconds late).
 * 2. Submit → RUNNING: from `gpuq submit`'s start until its supervisor says running (status.json),
 *    against raw `sbatch` until squeue says RUNNING (both polled every 20 ms): goal at most 0.3 s
 *    more (medians).
 * Exits 1 when a goal is missed, 2 when the cluster cannot be started here.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gpuq.js');
const i = process.argv.indexOf('--runs');
const RUNS = i > 0 ? Number(process.argv[i + 1]) : 3;
const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p)) ?? 'python3';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const b of ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch']) {
  if (!existsSync(b)) {
    console.error(`bench/slurm.js: ${b} is missing (apt-get install -y slurm-wlm munge)`);
    process.exit(2);
  }
}
if (process.getuid?.() !== 0) {
  console.error('bench/slurm.js: needs root (slurmd)');
  process.exit(2);
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

// --- the cluster
const dir = mkdtempSync(join(tmpdir(), 'gpuq-bench-slurm-'));
chmodSync(dir, 0o755);
for (const d of ['state', 'spool', 'log', 'work']) mkdirSync(join(dir, d));
const name = hostname().split('.')[0];
const conf = join(dir, 'slurm.conf');
const sock = join(dir, 'munge.sock');
writeFileSync(
  join(dir, 'munge.key'),
  Buffer.from(Array.from({ length: 1024 }, () => Math.floor(Math.random() * 256))),
  {
    mode: 0o400,
  },
);
writeFileSync(
  conf,
  [
    'ClusterName=gpuqbench',
    `SlurmctldHost=${name}(127.0.0.1)`,
    `SlurmctldPort=${await freePort()}`,
    `SlurmdPort=${await freePort()}`,
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${sock}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`,
    `SlurmdLogFile=${dir}/log/slurmd.log`,
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SchedulerType=sched/backfill',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core_Memory',
    'SlurmdParameters=config_overrides',
    'ReturnToService=2',
    'MpiDefault=none',
    'AccountingStorageType=accounting_storage/none',
    'JobAcctGatherType=jobacct_gather/none',
    'KillWait=5',
    'DefMemPerCPU=100',
    `NodeName=${name} NodeAddr=127.0.0.1 CPUs=8 RealMemory=${Math.max(2048, Math.floor(totalmem() / 1024 ** 2) - 1024)} State=UNKNOWN`,
    `PartitionName=bench Nodes=${name} Default=YES MaxTime=INFINITE State=UP`,
    '',
  ].join('\n'),
);
const env = { ...process.env, SLURM_CONF: conf };
const daemons = [];
const daemon = (bin, args) => {
  const c = spawn(bin, args, { env, stdio: 'ignore', detached: true });
  daemons.push(c);
};
const ok = (cmd, args) => spawnSync(cmd, args, { env, stdio: 'ignore' }).status === 0;
async function until(check, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await sleep(100);
  }
  throw new Error(`${what} within ${ms / 1000} s`);
}
function stopAll() {
  spawnSync('scancel', ['--partition', 'bench'], { env, stdio: 'ignore' });
  for (const c of daemons.reverse()) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

const prog = join(dir, 'end.py');
writeFileSync(prog, 'import time\ntime.sleep(1)\nprint(repr(time.time()), flush=True)\n');
chmodSync(prog, 0o644);
const home = join(dir, 'home');
mkdirSync(home);
writeFileSync(
  join(home, 'config.json'),
  JSON.stringify({
    defaults: { memory: '256m', timeout: '60s' },
    nodes: { sl: { transport: 'slurm', partition: 'bench', workdir: join(dir, 'work'), python: PYTHON } },
  }),
);
const genv = { ...env, GPUQ_HOME: home, NO_COLOR: '1' };

let failed = false;
try {
  daemon('/usr/sbin/munged', [
    '--foreground',
    '--force',
    `--socket=${sock}`,
    `--key-file=${join(dir, 'munge.key')}`,
    `--log-file=${dir}/log/munged.log`,
    `--pid-file=${dir}/munged.pid`,
    `--seed-file=${dir}/munged.seed`,
  ]);
  await until(() => existsSync(sock), 20_000, 'munged made no socket');
  daemon('/usr/sbin/slurmctld', ['-D', '-i', '-f', conf]);
  await until(() => ok('scontrol', ['ping']), 30_000, 'slurmctld did not answer');
  daemon('/usr/sbin/slurmd', ['-D', '-f', conf, '-N', name]);
  await until(
    () => /^idle/.test(spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { env, encoding: 'utf8' }).stdout.trim()),
    40_000,
    'the node did not come up idle',
  );

  /** Runs a command to its end; its stdout and when it ended (epoch ms). */
  const runTimed = (cmd, args, e) =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const c = spawn(cmd, args, { env: e, cwd: join(dir, 'work'), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      c.on('close', (code) =>
        code === 0 ? resolve({ out, t0, t1: Date.now() }) : reject(new Error(`${cmd} exited ${code}: ${err}`)),
      );
    });

  // 1. Job end → verdict.
  const gpuqLate = [];
  const sbatchLate = [];
  // Where gpuq's lateness goes: the supervisor's end (endedAtMs), its final status.json write
  // (the file's mtime; job.lock is let go right after), and the verdict (gpuq's exit).
  const parts = { ended: [], written: [] };
  for (let r = 0; r < RUNS; r++) {
    const before = new Set(existsSync(join(dir, 'work', 'jobs')) ? readdirSync(join(dir, 'work', 'jobs')) : []);
    const g = await runTimed(process.execPath, [BIN, 'submit', prog, '--wait', '--follow'], genv);
    const end = Number(g.out.trim().split('\n').pop()) * 1000;
    gpuqLate.push(g.t1 - end);
    for (const d of readdirSync(join(dir, 'work', 'jobs')).filter((x) => !before.has(x))) {
      const f = join(dir, 'work', 'jobs', d, 'status.json');
      parts.ended.push(Number(/"endedAtMs":(\d+)/.exec(readFileSync(f, 'utf8'))?.[1]) - end);
      parts.written.push(statSync(f).mtimeMs - end);
    }
    const outFile = join(dir, 'work', `raw-${r}.out`);
    const s = await runTimed(
      'sbatch',
      ['--wait', `--output=${outFile}`, '--mem=100M', '--wrap', `${PYTHON} ${prog}`],
      env,
    );
    sbatchLate.push(s.t1 - Number(readFileSync(outFile, 'utf8').trim().split('\n').pop()) * 1000);
  }
  const late = median(gpuqLate);
  const lateOk = late <= 1000;
  failed ||= !lateOk;
  console.log(
    `slurm end → verdict: gpuq ${(late / 1000).toFixed(2)} s after the program ended ` +
      `(sbatch --wait ${(median(sbatchLate) / 1000).toFixed(2)} s); goal <= 1 s: ${lateOk ? 'ok' : 'MISSED'}`,
  );
  console.log(
    `  of which: endedAtMs +${(median(parts.ended) / 1000).toFixed(2)} s, final status.json written ` +
      `+${(median(parts.written) / 1000).toFixed(2)} s, verdict (gpuq's exit) +${(late / 1000).toFixed(2)} s`,
  );

  // 2. Submit → RUNNING.
  const gpuqRun = [];
  const rawRun = [];
  const hold = join(dir, 'hold.py');
  writeFileSync(hold, 'import time\ntime.sleep(3)\n');
  chmodSync(hold, 0o644);
  for (let r = 0; r < RUNS; r++) {
    // gpuq: from the submit's start until its supervisor says running (the job folder, polled every 20 ms).
    const before = new Set(readdirSync(join(dir, 'work', 'jobs')));
    const g0 = Date.now();
    const sub = runTimed(process.execPath, [BIN, 'submit', hold, '--json'], genv);
    for (let found = false; !found; ) {
      for (const d of readdirSync(join(dir, 'work', 'jobs'))) {
        if (before.has(d)) continue;
        try {
          found ||= /"state":"(running|exited)"/.test(
            readFileSync(join(dir, 'work', 'jobs', d, 'status.json'), 'utf8'),
          );
        } catch {
          // not written yet
        }
      }
      if (!found) await sleep(20);
    }
    gpuqRun.push(Date.now() - g0);
    const job = JSON.parse((await sub).out);
    const t0 = Date.now();
    const id = execFileSync('sbatch', ['--parsable', '--mem=100M', '--wrap', `${PYTHON} ${hold}`], {
      env,
      encoding: 'utf8',
      cwd: join(dir, 'work'),
    }).trim();
    for (;;) {
      const st = spawnSync('squeue', ['-h', '-j', id, '-o', '%T'], { env, encoding: 'utf8' }).stdout.trim();
      if (st !== 'PENDING' && st !== 'CONFIGURING') break;
      await sleep(20);
    }
    rawRun.push(Date.now() - t0);
    spawnSync(process.execPath, [BIN, 'wait', job.id], { env: genv, stdio: 'ignore' });
  }
  const extra = median(gpuqRun) - median(rawRun);
  const runOk = extra <= 300;
  failed ||= !runOk;
  console.log(
    `slurm submit → RUNNING: gpuq ${(median(gpuqRun) / 1000).toFixed(2)} s, raw sbatch ${(median(rawRun) / 1000).toFixed(2)} s ` +
      `(+${(extra / 1000).toFixed(2)} s); goal <= +0.3 s: ${runOk ? 'ok' : 'MISSED'}`,
  );
} catch (e) {
  console.error(`bench/slurm.js: ${e.message}`);
  failed = true;
} finally {
  stopAll();
}
process.exit(failed ? 1 : 0);
