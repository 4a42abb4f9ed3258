/**
 * A private, real OpenSSH daemon on 127.0.0.1 for tests: its own temp dir, host keys, client
 * key, sshd_config, port and log; nothing of the system's ssh setup is touched. Killing it is a
 * node failure, freezing it is a stalled link. When /usr/sbin/sshd is missing, start() FAILS
 * with the command to install it (tests must not silently skip).
 *
 *   const sshd = await startSshd();               // in beforeAll
 *   const node = sshd.nodeConfig({ name: 'n1' });  // a NodeConfig pointing at it
 *   await sshd.writeKnownHosts(path, 'right');     // or 'wrong' / 'none'
 *   await sshd.cleanup();                          // in afterAll: kills it, removes the dir
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { NodeConfig } from '../../src/config/types.js';
import { SYSTEM_PYTHON } from './cli.js';

export const SSHD_BIN = '/usr/sbin/sshd';
/** The unprivileged account tests log in as (created on first use when running as root). */
export const TEST_USER = 'gpuqtest';

export type HostKeyKind = 'ed25519' | 'ecdsa' | 'rsa';

export interface HostKey {
  kind: HostKeyKind;
  /** As in known_hosts: "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa". */
  keyType: string;
  keyBase64: string;
  path: string;
}

export interface SshdOptions {
  /** Host key types the daemon offers (default: ed25519 only). */
  hostKeys?: HostKeyKind[];
  /** sshd LogLevel (default VERBOSE; DEBUG1 logs forwarded connections). */
  logLevel?: string;
  /** Extra sshd_config lines. */
  extraConfig?: string;
  /** ssh config alias written to sshConfigPath for this daemon (default "gpuq-test-node"). */
  alias?: string;
  /**
   * A boot id the daemon and everything started through it see in
   * /proc/sys/kernel/random/boot_id (a private mount namespace; root only). With setBootId()
   * and a restart, this simulates a node that rebooted.
   */
  bootId?: string;
}

export interface Sshd {
  readonly dir: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  /** Private key authorized for `user`, and a second key that is not. */
  readonly clientKeyPath: string;
  readonly unauthorizedKeyPath: string;
  readonly hostKeys: HostKey[];
  readonly logPath: string;
  /** An ssh config file with `Host <alias>` (HostName/User/Port/IdentityFile) and isolation defaults. */
  readonly sshConfigPath: string;
  readonly alias: string;
  /** Starts the daemon again on the same port with the same keys (after stop()). */
  start(): Promise<void>;
  /** SIGKILLs the daemon and every process under it (connections, sessions): a node failure. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** The boot id the daemon shows from its next start on (needs the bootId option). */
  setBootId(id: string): void;
  /** SIGSTOPs / SIGCONTs the daemon and its connections: a stalled link. */
  freeze(): void;
  thaw(): void;
  running(): boolean;
  /** A known_hosts line for this daemon: its real key ('right') or a fresh other key ('wrong'). */
  knownHostsLine(which: 'right' | 'wrong', kind?: HostKeyKind): string;
  /** Writes a known_hosts file holding the right key, a wrong key, or nothing. */
  writeKnownHosts(path: string, which: 'right' | 'wrong' | 'none', kind?: HostKeyKind): Promise<void>;
  /** A NodeConfig for this daemon (host 127.0.0.1, port, user, identity file), with overrides. */
  nodeConfig(overrides?: Partial<NodeConfig>): NodeConfig;
  /** The node's entry for a gpuq config.json (transport ssh, host, port, user, identityFile, workdir). */
  configEntry(overrides?: Record<string, unknown>): Record<string, unknown>;
  /** The sshd log so far (for assertions and failure messages). */
  log(): string;
  /** stop() and remove the temp dir. */
  cleanup(): Promise<void>;
}

/**
 * Starts a private sshd on a free loopback port; see the module comment. Needs root to create
 * the test user (as in CI); as another user it logs in as that user.
 */
export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  if (!existsSync(SSHD_BIN)) {
    throw new Error(
      `${SSHD_BIN} is missing: the SSH tests need a real OpenSSH server. ` +
        `Install it with \`apt-get install -y openssh-server\`.`,
    );
  }
  const isRoot = process.getuid?.() === 0;
  const user = isRoot ? ensureTestUser() : userInfo().username;
  if (isRoot) execFileSync('mkdir', ['-p', '-m', '0755', '/run/sshd']);

  const dir = await mkdtemp(join(tmpdir(), 'gpuq-sshd-'));
  await chmod(dir, 0o755); // the login user must read authorized_keys in here
  const kinds = opts.hostKeys ?? ['ed25519'];
  const hostKeys: HostKey[] = kinds.map((kind) => {
    const path = join(dir, `host_${kind}`);
    keygen(kind, path);
    return { kind, path, ...readPub(`${path}.pub`) };
  });
  const clientKeyPath = join(dir, 'client_ed25519');
  keygen('ed25519', clientKeyPath);
  const unauthorizedKeyPath = join(dir, 'other_ed25519');
  keygen('ed25519', unauthorizedKeyPath);
  const wrongKeys = new Map<HostKeyKind, HostKey>();
  for (const kind of kinds) {
    const path = join(dir, `wrong_${kind}`);
    keygen(kind, path);
    wrongKeys.set(kind, { kind, path, ...readPub(`${path}.pub`) });
  }
  await writeFile(join(dir, 'authorized_keys'), readFileSync(`${clientKeyPath}.pub`), { mode: 0o644 });
  await chmod(join(dir, 'authorized_keys'), 0o644);

  const logPath = join(dir, 'sshd.log');
  const configPath = join(dir, 'sshd_config');
  const alias = opts.alias ?? 'gpuq-test-node';
  const sshConfigPath = join(dir, 'ssh_config');
  let port = 0;
  let bootId: string | null = opts.bootId ?? null;
  let child: ChildProcess | null = null;
  let exited = true;

  const writeConfig = async () => {
    await writeFile(
      configPath,
      [
        `ListenAddress 127.0.0.1`,
        `Port ${port}`,
        ...hostKeys.map((k) => `HostKey ${k.path}`),
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `UsePAM no`,
        `StrictModes no`,
        `PasswordAuthentication no`,
        `KbdInteractiveAuthentication no`,
        `PubkeyAuthentication yes`,
        `PermitRootLogin no`,
        `AllowUsers ${user}`,
        `MaxStartups 100:30:200`,
        `LogLevel ${opts.logLevel ?? 'VERBOSE'}`,
        `Subsystem sftp internal-sftp`,
        opts.extraConfig ?? '',
        '',
      ].join('\n'),
    );
    await writeFile(
      sshConfigPath,
      [
        `Host ${alias}`,
        `  HostName 127.0.0.1`,
        `  Port ${port}`,
        `  User ${user}`,
        `  IdentityFile ${clientKeyPath}`,
        `Host *`,
        `  IdentitiesOnly yes`,
        `  UserKnownHostsFile ${join(dir, 'user_known_hosts')}`,
        `  GlobalKnownHostsFile /dev/null`,
        '',
      ].join('\n'),
    );
  };

  const launch = async (): Promise<void> => {
    await writeConfig();
    const logStart = safeRead(logPath).length;
    const sshdArgs = ['-D', '-f', configPath, '-E', logPath];
    let proc: ChildProcess;
    if (bootId !== null) {
      const file = join(dir, `boot_id.${bootId.replace(/[^A-Za-z0-9_-]/g, '_')}`);
      await writeFile(file, `${bootId}\n`, { mode: 0o644 });
      // unshare execs sh, which execs sshd: the pid stays the daemon's.
      proc = spawn(
        'unshare',
        [
          '-m',
          'sh',
          '-c',
          'mount --bind "$0" /proc/sys/kernel/random/boot_id && exec "$@"',
          file,
          SSHD_BIN,
          ...sshdArgs,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } else {
      proc = spawn(SSHD_BIN, sshdArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child = proc;
    exited = false;
    proc.once('exit', () => {
      if (child === proc) exited = true;
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited) {
        throw new Error(
          `sshd exited at start: ${stderr.trim()} ${safeRead(logPath).trim().split('\n').slice(-5).join(' | ')}`,
        );
      }
      // Ready once *this* daemon says it listens (a probe could reach another one on a raced port).
      if (safeRead(logPath).slice(logStart).includes(`Server listening on 127.0.0.1 port ${port}`)) return;
      await sleep(25);
    }
    throw new Error(`sshd did not listen on 127.0.0.1:${port} within 10 s: ${safeRead(logPath)}`);
  };

  const kill = (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc?.pid || exited) return;
    for (const pid of [...descendants(proc.pid), proc.pid]) {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
  };

  const stop = async () => {
    const proc = child;
    if (!proc || exited) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    kill('SIGCONT');
    kill('SIGKILL');
    await gone;
  };

  const onExit = () => kill('SIGKILL');

  // A free port can be taken between probing and binding: try a few.
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    try {
      await launch();
      lastErr = null;
      break;
    } catch (err) {
      lastErr = err;
      await stop();
    }
  }
  if (lastErr) {
    await rm(dir, { recursive: true, force: true });
    throw lastErr;
  }
  process.once('exit', onExit);

  const sshd: Sshd = {
    dir,
    host: '127.0.0.1',
    port,
    user,
    clientKeyPath,
    unauthorizedKeyPath,
    hostKeys,
    logPath,
    sshConfigPath,
    alias,
    start: async () => {
      if (!exited) return;
      await launch();
    },
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    setBootId: (id) => {
      if (bootId === null) throw new Error('setBootId needs startSshd({ bootId })');
      bootId = id;
    },
    freeze: () => kill('SIGSTOP'),
    thaw: () => kill('SIGCONT'),
    running: () => !exited,
    knownHostsLine: (which, kind) => {
      const k = pickKey(which === 'right' ? hostKeys : [...wrongKeys.values()], kind);
      return `[127.0.0.1]:${port} ${k.keyType} ${k.keyBase64}`;
    },
    writeKnownHosts: async (path, which, kind) => {
      const text = which === 'none' ? '' : `${sshd.knownHostsLine(which, kind)}\n`;
      await writeFile(path, text, { mode: 0o600 });
    },
    nodeConfig: (overrides = {}) => ({
      name: 'sshnode',
      transport: 'ssh',
      host: '127.0.0.1',
      port,
      user,
      identityFile: clientKeyPath,
      jump: null,
      gpus: [],
      workdir: '~/gpuq',
      python: SYSTEM_PYTHON,
      acceptNewHostKey: false,
      // Every connect timeout in tests is 10 s or more: ssh2's load and `ssh -G` take seconds on a busy machine.
      connectTimeoutS: 10,
      stallMarginS: null,
      boundary: 'auto',
      runAs: null,
      docker: { command: ['docker'], image: null, runtime: null, extraFlags: [] },
      ...overrides,
    }),
    configEntry: (overrides = {}) => ({
      transport: 'ssh',
      host: '127.0.0.1',
      port,
      user,
      identityFile: clientKeyPath,
      workdir: `~/gpuq-${port}`,
      python: SYSTEM_PYTHON,
      // gpuq's own default: the bound covers loading ssh2 and `ssh -G` too, which take seconds
      // while the hostile tests load the machine. Tests about timeouts set their own.
      connectTimeout: '10s',
      ...overrides,
    }),
    log: () => safeRead(logPath),
    cleanup: async () => {
      await stop();
      process.removeListener('exit', onExit);
      await rm(dir, { recursive: true, force: true });
      await rm(join(homeOf(user), `gpuq-${port}`), { recursive: true, force: true });
    },
  };
  return sshd;
}

/** Creates (once) the unprivileged login user, unlocked for key-only login without PAM. */
function ensureTestUser(): string {
  for (let attempt = 0; attempt < 20; attempt++) {
    if (!userExists(TEST_USER)) {
      try {
        execFileSync('useradd', ['-m', '-s', '/bin/bash', TEST_USER], { stdio: 'pipe' });
      } catch {
        // Another test file may be creating it at the same moment (or holding the passwd lock).
        sleepSync(100);
        continue;
      }
    }
    try {
      // useradd leaves the account locked ("!"), which sshd refuses without PAM.
      const shadow = readFileSync('/etc/shadow', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${TEST_USER}:`));
      if (shadow?.split(':')[1]?.startsWith('!')) execFileSync('usermod', ['-p', '*', TEST_USER], { stdio: 'pipe' });
      const home = execFileSync('getent', ['passwd', TEST_USER], { encoding: 'utf8' }).split(':')[5]!;
      if (!existsSync(home)) execFileSync('install', ['-d', '-o', TEST_USER, '-g', TEST_USER, '-m', '0755', home]);
      return TEST_USER;
    } catch {
      sleepSync(100);
    }
  }
  throw new Error(`could not create the test user ${TEST_USER} (useradd -m -s /bin/bash ${TEST_USER})`);
}

function homeOf(name: string): string {
  return execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':')[5]!;
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function keygen(kind: HostKeyKind, path: string): void {
  const args = ['-q', '-t', kind, '-N', '', '-C', '', '-f', path];
  if (kind === 'rsa') args.push('-b', '2048');
  execFileSync('ssh-keygen', args, { stdio: 'pipe' });
}

function readPub(path: string): { keyType: string; keyBase64: string } {
  const [keyType, keyBase64] = readFileSync(path, 'utf8').trim().split(/\s+/);
  return { keyType: keyType!, keyBase64: keyBase64! };
}

function pickKey(keys: HostKey[], kind?: HostKeyKind): HostKey {
  const k = kind ? keys.find((x) => x.kind === kind) : keys[0];
  if (!k) throw new Error(`the test sshd has no ${kind} host key`);
  return k;
}

/** Every process below `root`, read from /proc (children first found, then theirs). */
function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      /* exited meanwhile */
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [pid, ppid] of parentOf) {
      if (ppid === p && !out.includes(pid)) {
        out.push(pid);
        queue.push(pid);
      }
    }
  }
  return out;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Reads a file's text (for tests asserting on known_hosts contents). */
export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}
