#!/usr/bin/env node
/**
 * SSH speed targets, as ratios against baselines measured in the same run. Run after tsc:
 *
 *   node bench/ssh.js [--runs 7]
 *
 * 1. `gpuq submit` of a small file to an SSH node against OpenSSH's `ssh host true` plus `scp`
 *    of the same file (two handshakes): goal ratio ≤ 1.0.
 * 2. `gpuq nodes` with one dead node (accepts TCP, never answers) against its connect timeout
 *    plus 1 s: goal ratio ≤ 1.0.
 *
 * Starts a private sshd on loopback (needs /usr/sbin/sshd; as root it logs in as the
 * unprivileged user gpuqtest, created if missing). Prints one line per measurement and
 * exits 1 when a target is missed or the bench cannot run.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gpuq.js');
const SSHD = '/usr/sbin/sshd';
const USER = 'gpuqtest';
const arg = process.argv.indexOf('--runs');
const RUNS = arg > 0 ? Math.max(1, Number(process.argv[arg + 1])) : 7;
const DEAD_TIMEOUT_S = 2;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Names of the targets this run missed (a bench that cannot run counts as one). */
const missed = [];

function say(line) {
  process.stdout.write(`${line}\n`);
}

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
    say(`ssh bench: skipped, ${SSHD} is missing (apt-get install -y openssh-server)`);
    return;
  }
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    say('ssh bench: skipped, dist/ is missing (run tsc first)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-bench-ssh-'));
  chmodSync(dir, 0o755);
  const user = loginUser();
  const sshd = await startSshd(dir, user);
  const blackhole = createServer(() => {});
  await new Promise((r) => blackhole.listen(0, '127.0.0.1', r));
  const deadPort = blackhole.address().port;
  try {
    const home = join(dir, 'home');
    execFileSync('mkdir', ['-p', home]);
    const workdir = `~/gpuq-bench-${sshd.port}`;
    const node = {
      transport: 'ssh',
      host: '127.0.0.1',
      port: sshd.port,
      user,
      identityFile: sshd.clientKey,
      workdir,
      connectTimeout: '5s',
    };
    writeFileSync(
      join(home, 'config.json'),
      JSON.stringify({
        nodes: {
          n: node,
          dead: { ...node, port: deadPort, connectTimeout: `${DEAD_TIMEOUT_S}s` },
        },
      }),
    );
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    const sshConfig = join(dir, 'ssh_config');
    writeFileSync(sshConfig, 'Host *\n  GlobalKnownHostsFile /dev/null\n');
    const env = { ...process.env, GPUQ_HOME: home, GPUQ_SSH_CONFIG: sshConfig, NO_COLOR: '1' };
    const file = join(dir, 'small.py');
    writeFileSync(file, 'print("hello")\n');

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
    const baseline = () =>
      timed('ssh', [...sshOpts, '-p', String(sshd.port), `${user}@127.0.0.1`, 'true'], env) +
      timed(
        'scp',
        ['-q', ...sshOpts, '-P', String(sshd.port), file, `${user}@127.0.0.1:/tmp/gpuq-bench-${sshd.port}.py`],
        env,
      );
    const submit = () => timed(process.execPath, [BIN, 'submit', file, '--node', 'n', '-q'], env);

    // Warm both (page cache, sshd's first fork), then interleave so load hits both alike.
    baseline();
    submit();
    const base = [];
    const ours = [];
    for (let i = 0; i < RUNS; i++) {
      base.push(baseline());
      ours.push(submit());
    }
    const b = median(base);
    const o = median(ours);
    if (!(o / b <= 1.0)) missed.push('ssh submit');
    say(
      `ssh submit: gpuq submit (small file, one connection) ${o.toFixed(0)} ms ` +
        `vs ssh host true + scp ${b.toFixed(0)} ms: ratio ${(o / b).toFixed(2)} ` +
        `(goal <= 1.0, median of ${RUNS})`,
    );

    const nodesTimes = [];
    for (let i = 0; i < Math.min(RUNS, 3); i++) nodesTimes.push(timed(process.execPath, [BIN, 'nodes'], env, [0, 3]));
    const goal = (DEAD_TIMEOUT_S + 1) * 1000;
    const nm = median(nodesTimes);
    if (!(nm / goal <= 1.0)) missed.push('ssh nodes');
    say(
      `ssh nodes: gpuq nodes with one dead node (connect timeout ${DEAD_TIMEOUT_S} s) ${nm.toFixed(0)} ms ` +
        `vs connect timeout + 1 s = ${goal} ms: ratio ${(nm / goal).toFixed(2)} ` +
        `(goal <= 1.0, median of ${nodesTimes.length})`,
    );
  } finally {
    blackhole.close();
    sshd.child.kill('SIGKILL');
    try {
      execFileSync('bash', ['-c', `rm -rf ~${user}/gpuq-bench-${sshd.port} /tmp/gpuq-bench-${sshd.port}.py`], {
        stdio: 'pipe',
      });
    } catch {
      /* best effort */
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  say(`ssh bench: failed: ${e?.message ?? e}`);
  missed.push('ssh bench failed');
}
if (missed.length > 0) say(`ssh bench: MISSED ${missed.join(', ')}`);
process.exit(missed.length > 0 ? 1 : 0);
