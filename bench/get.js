#!/usr/bin/env node
/**
 * `gpuq get` of a 100 MiB output against `scp` of the same file, over a private sshd on loopback
 * (bench/ssh-helpers.js), in one run: goal ratio <= 1.2 (median of --runs, default 3).
 *
 *   node bench/get.js [--runs 3] [--mib 100] [--keep DIR]
 *
 * `--cpu-prof DIR` profiles the gpuq side (node --cpu-prof). Exits 1 when the goal is missed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, loginUser, median, SSHD, startSshd, timed } from './ssh-helpers.js';

const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const RUNS = Number(opt('runs', 3));
const MIB = Number(opt('mib', 100));
const PROF = opt('cpu-prof', null);

function say(line) {
  process.stdout.write(`${line}\n`);
}

async function main() {
  if (!existsSync(SSHD)) {
    say(`get bench: skipped, ${SSHD} is missing`);
    return true;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-bench-get-'));
  chmodSync(dir, 0o755);
  const user = loginUser();
  const sshd = await startSshd(dir, user);
  try {
    const home = join(dir, 'home');
    mkdirSync(home);
    const workdir = `~/gpuq-bench-get-${sshd.port}`;
    const node = { transport: 'ssh', host: '127.0.0.1', port: sshd.port, user, identityFile: sshd.clientKey, workdir };
    writeFileSync(join(home, 'config.json'), JSON.stringify({ nodes: { n: node } }));
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    const sshConfig = join(dir, 'ssh_config');
    writeFileSync(sshConfig, 'Host *\n  GlobalKnownHostsFile /dev/null\n');
    const env = { ...process.env, GPUQ_HOME: home, GPUQ_SSH_CONFIG: sshConfig, NO_COLOR: '1' };
    const job = join(dir, 'big.py');
    writeFileSync(job, `import os\nwith open("big.bin", "wb") as f:\n    f.write(os.urandom(${MIB} * 1024 * 1024))\n`);
    const out = spawnSync(process.execPath, [BIN, 'submit', job, '--node', 'n', '--wait', '-q', '--file-size', '1g'], {
      env,
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(`the ${MIB} MiB job failed: ${out.stderr}`);
    const id = out.stdout.trim().split('\n')[0];
    const shown = JSON.parse(execFileSync(process.execPath, [BIN, 'show', id, '--json'], { env, encoding: 'utf8' }));
    const jobDir = shown.remote.dir;
    const sshOpts = ['-F', sshConfig, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`];
    const g = [];
    const s = [];
    for (let i = 0; i < RUNS; i++) {
      const o = join(dir, `get${i}`);
      const prof = PROF ? ['--cpu-prof', '--cpu-prof-dir', PROF] : [];
      g.push(timed(process.execPath, [...prof, BIN, 'get', id, '--out', o], env));
      s.push(
        timed(
          'scp',
          [
            '-q',
            ...sshOpts,
            '-i',
            sshd.clientKey,
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
    const ok = gm / sm <= 1.2;
    say(
      `get: gpuq get of a ${MIB} MiB output ${gm.toFixed(0)} ms vs scp ${sm.toFixed(0)} ms: ratio ${(gm / sm).toFixed(2)} ` +
        `(goal <= 1.2, median of ${RUNS}; gpuq ${g.map((x) => x.toFixed(0)).join(', ')}; scp ${s.map((x) => x.toFixed(0)).join(', ')})`,
    );
    return ok;
  } finally {
    sshd.child.kill('SIGKILL');
    try {
      execFileSync('bash', ['-c', `rm -rf ~${user}/gpuq-bench-get-${sshd.port}`], { stdio: 'pipe' });
    } catch {
      /* best effort */
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

let ok = false;
try {
  ok = await main();
} catch (e) {
  say(`get bench: failed: ${e?.message ?? e}`);
}
process.exit(ok ? 0 : 1);
