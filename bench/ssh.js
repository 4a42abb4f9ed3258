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
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, loginUser, median, ROOT, SSHD, startSshd, timed } from './ssh-helpers.js';

const arg = process.argv.indexOf('--runs');
const RUNS = arg > 0 ? Math.max(1, Number(process.argv[arg + 1])) : 7;
const DEAD_TIMEOUT_S = 2;

/** Names of the targets this run missed (a bench that cannot run counts as one). */
const missed = [];

function say(line) {
  process.stdout.write(`${line}\n`);
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
