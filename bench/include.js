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
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gpuq.js');
const SSHD = '/usr/sbin/sshd';
const USER = 'gpuqtest';
const arg = process.argv.indexOf('--separate');
const SEPARATE = arg > 0 ? Math.max(1, Number(process.argv[arg + 1])) : 100;
const BULK = 100;
const missed = [];
function say(line) {
  process.stdout.write(`${line}\n`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wall time of one command in ms; throws with its stderr when it fails (unless allowed). */
function timed(cmd, args, env, okCodes = [0]) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!okCodes.includes(r.status)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return ms;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The login user: gpuqtest (unlocked for key-only login) as root, else ourselves. */
function loginUser() {
  if (process.getuid?.() !== 0) return userInfo().username;
  try {
    execFileSync('id', ['-u', USER], { stdio: 'pipe' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/bash', USER], { stdio: 'pipe' });
  }
  const shadow = readFileSync('/etc/shadow', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${USER}:`));
  if (shadow?.split(':')[1]?.startsWith('!')) execFileSync('usermod', ['-p', '*', USER], { stdio: 'pipe' });
  execFileSync('mkdir', ['-p', '-m', '0755', '/run/sshd']);
  return USER;
}

/** Starts a private sshd; resolves once it listens. */
async function startSshd(dir, user) {
  const keygen = (path) =>
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', path], { stdio: 'pipe' });
  keygen(join(dir, 'host'));
  keygen(join(dir, 'client'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')));
  chmodSync(join(dir, 'authorized_keys'), 0o644);
  const port = await freePort();
  const log = join(dir, 'sshd.log');
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `HostKey ${join(dir, 'host')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      `AllowUsers ${user}`,
      'MaxStartups 100:30:200',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const child = spawn(SSHD, ['-D', '-f', join(dir, 'sshd_config'), '-E', log], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (existsSync(log) && readFileSync(log, 'utf8').includes(`port ${port}`)) break;
    await sleep(25);
  }
  const [type, key] = readFileSync(join(dir, 'host.pub'), 'utf8').trim().split(/\s+/);
  return { child, port, knownHostsLine: `[127.0.0.1]:${port} ${type} ${key}`, clientKey: join(dir, 'client') };
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
