#!/usr/bin/env node
/**
 * The bulk submit speed target over SSH, as a ratio against a baseline in the same run:
 *
 *   node bench/include.js [--separate N]
 *
 * `gpuq submit` of 100 files (100 jobs, one connection, one batch: node/batch.ts) against 100
 * separate `gpuq submit` commands: goal at least 10x faster. The bulk's jobs are waited for before
 * the separate submits are timed (they would slow them). `--separate N` times N separate submits
 * and scales them to 100 (a busy machine makes 100 take minutes); the line says so.
 * `gpuq get` against `scp` is bench/get.js.
 *
 * Starts a private sshd on loopback as bench/ssh.js does. Exits 1 when a target is missed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, loginUser, SSHD, startSshd, timed } from './ssh-helpers.js';

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
    const node = {
      transport: 'ssh',
      host: '127.0.0.1',
      port: sshd.port,
      user,
      identityFile: sshd.clientKey,
      workdir,
      connectTimeout: '60s',
    };
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
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [BIN, 'submit', ...files, '--node', 'n', '-q'], { env, encoding: 'utf8' });
    const bulk = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`the bulk submit exited ${r.status}: ${r.stderr}`);
    const ids = r.stdout.trim().split('\n');
    if (ids.length !== BULK) throw new Error(`the bulk submit printed ${ids.length} ids`);
    // Its jobs end before the separate submits are timed.
    const w = spawnSync(process.execPath, [BIN, 'wait', ...ids], { env, encoding: 'utf8' });
    if (w.status !== 0) throw new Error(`the bulk jobs did not all succeed (wait exited ${w.status}): ${w.stderr}`);
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
