#!/usr/bin/env node
/**
 * Bulk submit and `get` speed targets over SSH, as ratios against baselines in the same run:
 *
 *   node bench/include.js [--separate N]
 *
 * 1. `gpuq submit` of 100 files (100 jobs, one connection) against 100 separate `gpuq submit`
 *    commands: goal at least 10x faster. `--separate N` times N separate submits and scales
 *    them to 100 (a busy machine makes 100 take minutes); the line says so.
 * 2. `gpuq get` of a 100 MiB file the job wrote against `scp` of the same file: goal ratio <= 1.2.
 *
 * Starts a private sshd on loopback as bench/ssh.js does. Exits 1 when a target is missed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, loginUser, median, SSHD, startSshd, timed } from './ssh-helpers.js';

const arg = process.argv.indexOf('--separate');
const SEPARATE = arg > 0 ? Math.max(1, Number(process.argv[arg + 1])) : 100;
const BULK = 100;
const missed = [];
function say(line) {
  process.stdout.write(`${line}\n`);
}

async function main() {
  if (!existsSync(SSHD)) {
    say(`include bench: skipped, ${SSHD} is missing`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-bench-inc-'));
  chmodSync(dir, 0o755);
  const user = loginUser();
  const sshd = await startSshd(dir, user);
  try {
    const home = join(dir, 'home');
    mkdirSync(home);
    const workdir = `~/gpuq-bench-inc-${sshd.port}`;
    const node = { transport: 'ssh', host: '127.0.0.1', port: sshd.port, user, identityFile: sshd.clientKey, workdir };
    writeFileSync(join(home, 'config.json'), JSON.stringify({ nodes: { n: node } }));
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    const sshConfig = join(dir, 'ssh_config');
    writeFileSync(sshConfig, 'Host *\n  GlobalKnownHostsFile /dev/null\n');
    const env = { ...process.env, GPUQ_HOME: home, GPUQ_SSH_CONFIG: sshConfig, NO_COLOR: '1' };
    const files = [];
    mkdirSync(join(dir, 'many'));
    for (let i = 0; i < BULK; i++) {
      const f = join(dir, 'many', `p${i}.sh`);
      writeFileSync(f, `#!/bin/sh\necho ${i}\n`, { mode: 0o755 });
      files.push(f);
    }
    const bulk = timed(process.execPath, [BIN, 'submit', ...files, '--node', 'n', '-q'], env);
    let sep = 0;
    for (let i = 0; i < SEPARATE; i++)
      sep += timed(process.execPath, [BIN, 'submit', files[i % BULK], '--node', 'n', '-q'], env);
    const sep100 = (sep / SEPARATE) * BULK;
    const ratio = sep100 / bulk;
    if (!(ratio >= 10)) missed.push('bulk submit');
    say(
      `bulk submit: ${BULK} files in one gpuq submit ${bulk.toFixed(0)} ms vs ${BULK} separate submits ` +
        `${sep100.toFixed(0)} ms${SEPARATE === BULK ? '' : ` (${SEPARATE} timed, scaled)`}: ${ratio.toFixed(1)}x faster (goal >= 10x)`,
    );

    // get: a job writes 100 MiB; gpuq get vs scp of the same file.
    const job = join(dir, 'big.py');
    writeFileSync(job, 'import os\nwith open("big.bin", "wb") as f:\n    f.write(os.urandom(100 * 1024 * 1024))\n');
    const out = spawnSync(process.execPath, [BIN, 'submit', job, '--node', 'n', '--wait', '-q', '--file-size', '1g'], {
      env,
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(`the 100 MiB job failed: ${out.stderr}`);
    const id = out.stdout.trim().split('\n')[0];
    const remote = execFileSync(process.execPath, [BIN, 'show', id, '--json'], { env, encoding: 'utf8' });
    const jobDir = JSON.parse(remote).remote.dir;
    const sshOpts = [
      '-F',
      sshConfig,
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-i',
      sshd.clientKey,
    ];
    const g = [];
    const s = [];
    for (let i = 0; i < 3; i++) {
      const o = join(dir, `get${i}`);
      g.push(timed(process.execPath, [BIN, 'get', id, '--out', o], env));
      s.push(
        timed(
          'scp',
          [
            '-q',
            ...sshOpts,
            '-P',
            String(sshd.port),
            `${user}@127.0.0.1:${jobDir}/work/big.bin`,
            join(dir, `scp${i}.bin`),
          ],
          env,
        ),
      );
      rmSync(o, { recursive: true, force: true });
      rmSync(join(dir, `scp${i}.bin`), { force: true });
    }
    const gm = median(g);
    const sm = median(s);
    if (!(gm / sm <= 1.2)) missed.push('get');
    say(
      `get: gpuq get of a 100 MiB output ${gm.toFixed(0)} ms vs scp ${sm.toFixed(0)} ms: ratio ${(gm / sm).toFixed(2)} (goal <= 1.2, median of 3)`,
    );
  } finally {
    sshd.child.kill('SIGKILL');
    try {
      execFileSync('bash', ['-c', `rm -rf ~${user}/gpuq-bench-inc-${sshd.port}`], { stdio: 'pipe' });
    } catch {
      /* best effort */
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  say(`include bench: failed: ${e?.message ?? e}`);
  missed.push('include bench failed');
}
if (missed.length > 0) say(`include bench: MISSED ${missed.join(', ')}`);
process.exit(missed.length > 0 ? 1 : 0);
