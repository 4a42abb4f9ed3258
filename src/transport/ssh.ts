/**
 * The SSH transport: one verified connection per node (through ProxyJump hosts if any), over
 * which scripts run, output streams and files upload. Every way the link can fail ends in a
 * NodeUnreachableError (exit 3) with a one-sentence cause; nothing here can crash the process
 * with an unhandled 'error' event.
 */
import { constants as osConstants } from 'node:os';
import { createConnection } from 'node:net';
import { readFile, stat } from 'node:fs/promises';
import { posix as pathPosix } from 'node:path';
import type { NodeSSH } from 'node-ssh';
import type { NodeConfig } from '../config/types.js';
import { NodeFaultError, NodeUnreachableError } from '../core/errors.js';
import { prepareHostKeyGate, type HostKeyGate } from './host-keys.js';
import { resolveNode, resolveSshHost, type SshEndpoint } from './ssh-resolve.js';
import {
  EXEC_OUTPUT_CAP,
  type ExecResult,
  pauseFor,
  type RemoteCommand,
  type StreamHandlers,
  type Transport,
} from './transport.js';

export interface SshConnectOptions {
  /** gpuq's own known_hosts (Config.knownHostsPath); new keys are recorded only here. */
  knownHostsPath: string;
  /** Trust and record an unknown host key (also on when the node's config says so). */
  acceptNewHostKey?: boolean;
  /** Read this ssh config instead of ~/.ssh/config (`ssh -F`); else env GPUQ_SSH_CONFIG. */
  sshConfigFile?: string;
  /** Keepalive probe interval (default 5000 ms) and misses before the link counts as dead (default 3). */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Channels open at once on the connection (default 8; sshd's MaxSessions is 10). */
  maxChannels?: number;
  /** Environment for HOME, SSH_AUTH_SOCK, GPUQ_SSH_CONFIG (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The ssh2 pieces used here (node-ssh ships no types for ssh2 itself). */
interface Ssh2Client {
  on(event: 'error', l: (err: Error & { level?: string; code?: string }) => void): this;
  on(event: 'close' | 'end', l: () => void): this;
  exec(command: string, options: object, cb: (err: Error | undefined, channel: Ssh2Channel) => void): boolean;
  removeAllListeners(event?: string): this;
}
interface Ssh2Channel {
  on(event: 'data', l: (chunk: Buffer) => void): this;
  on(event: 'exit', l: (code: number | null, signal?: string) => void): this;
  on(event: 'close' | 'error', l: (err?: Error) => void): this;
  stderr: { on(event: 'data', l: (chunk: Buffer) => void): unknown };
  end(data?: string | Buffer): void;
  write(data: Buffer): boolean;
  once(event: 'drain' | 'close', l: () => void): this;
  removeListener(event: 'drain' | 'close', l: () => void): this;
  close(): void;
  pause(): void;
  resume(): void;
}
interface SftpHandle {
  readonly _brand?: 'sftp-handle';
}
interface Ssh2Sftp {
  open(path: string, flags: string, attrs: { mode: number }, cb: (err: Error | undefined, h: SftpHandle) => void): void;
  fchmod(h: SftpHandle, mode: number, cb: (err: Error | undefined) => void): void;
  close(h: SftpHandle, cb: (err: Error | undefined) => void): void;
  mkdir(path: string, cb: (err: Error | undefined) => void): void;
  stat(path: string, cb: (err: Error | undefined, st: { isDirectory(): boolean }) => void): void;
  fastPut(local: string, remote: string, opts: object, cb: (err: Error | undefined) => void): void;
  on(event: 'error', l: (err: Error) => void): unknown;
  end(): void;
}

type ConnectError = Error & { level?: string; code?: string };

const DEFAULT_KEEPALIVE_MS = 5000;
const DEFAULT_KEEPALIVE_COUNT = 3;
const DEFAULT_MAX_CHANNELS = 8;
/** Largest script passed as an argument (the node's kernel refuses one argument over 128 KiB). */
const MAX_ARG_SCRIPT = 96 * 1024;
/** How long an aborted stream may take to wind down before its channel is closed by force. */
const ABORT_GRACE_MS = 2000;
/**
 * The longest one exec may run: gpuq's short commands take seconds (the launch waits at most ~5 s).
 * Past it the channel is closed and the result is exit 124: sshd runs the account's ~/.ssh/rc
 * before each command, and one a job planted (a FIFO) would otherwise hang the command for ever.
 */
const EXEC_TIMEOUT_MS = 120_000;
/** The most of a stream's stdout/stderr kept in its result when handlers receive the chunks live. */
const STREAM_RESULT_TAIL = 1024 * 1024;

/**
 * Runs a stream's script in its own process group (setsid) and watches the channel's stdin:
 * when it reaches EOF — the client aborted, closed the channel, or the link died — the group
 * gets SIGTERM, then SIGKILL 5 s later. $1 is the script, $2 its stdin in base64 (or empty).
 */
const STREAM_WRAPPER = `s=$1; in=$2
if [ -n "$in" ]; then
  printf %s "$in" | base64 -d | setsid bash -c "$s" gpuq &
else
  setsid bash -c "$s" gpuq </dev/null &
fi
c=$!
{
  while IFS= read -r _; do :; done
  kill -TERM -- "-$c" 2>/dev/null
  ( i=0; while [ "$i" -lt 50 ] && kill -0 -- "-$c" 2>/dev/null; do sleep 0.1; i=$((i+1)); done; kill -KILL -- "-$c" 2>/dev/null ) &
} <&0 >/dev/null 2>&1 &
w=$!
{ wait "$c"; } 2>/dev/null; r=$?
kill "$w" 2>/dev/null
exit "$r"`;

/**
 * Opens the one SSH connection gpuq uses for a node: resolves its alias with `ssh -G`, hops
 * through ProxyJump hosts, verifies every host key against known_hosts, logs in with the
 * node's identity file or the ssh agent. Rejects with NodeUnreachableError (exit 3).
 */
export async function connectSsh(node: NodeConfig, opts: SshConnectOptions): Promise<Transport> {
  const env = opts.env ?? process.env;
  const resolveOpts = { sshConfigFile: opts.sshConfigFile, env };
  // Loading ssh2 (~90 ms) overlaps with `ssh -G`.
  const lib = import('node-ssh');
  lib.catch(() => undefined);
  const target = await resolveNode(node, resolveOpts);
  if (target.proxyCommand) {
    throw new NodeUnreachableError(
      node.name,
      `its ssh config uses a ProxyCommand, which gpuq does not run`,
      `use ProxyJump in ~/.ssh/config or "jump" in the node's config instead`,
      { retryable: false },
    );
  }
  const hops: SshEndpoint[] = [];
  for (const spec of target.jumps) hops.push(await resolveSshHost(spec, {}, resolveOpts));

  const acceptNew = Boolean(opts.acceptNewHostKey || node.acceptNewHostKey);
  const settings: HopSettings = {
    node: node.name,
    knownHostsPath: opts.knownHostsPath,
    acceptNew,
    NodeSSH: (await lib).NodeSSH,
    timeoutS: node.connectTimeoutS,
    keepaliveIntervalMs: opts.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_MS,
    keepaliveCountMax: opts.keepaliveCountMax ?? DEFAULT_KEEPALIVE_COUNT,
  };

  const opened: NodeSSH[] = [];
  try {
    let sock: unknown;
    for (const [i, hop] of hops.entries()) {
      const ssh = await connectHop(hop, sock, settings, `jump host ${hop.alias}`);
      opened.push(ssh);
      watchConnection(ssh, () => {});
      const next = hops[i + 1] ?? target;
      try {
        sock = await ssh.forwardOut('127.0.0.1', 0, next.hostname, next.port);
      } catch (err) {
        throw new NodeUnreachableError(
          node.name,
          `jump host ${hop.alias} could not reach ${next.hostname}:${next.port} (${oneLine(err)})`,
          `check that ${next.hostname}:${next.port} is reachable from ${hop.hostname} and ` +
            `that the jump host allows TCP forwarding`,
        );
      }
    }
    const ssh = await connectHop(target, sock, settings, null);
    opened.push(ssh);
    return new SshTransport(node.name, ssh, opened.slice(0, -1), opts.maxChannels ?? DEFAULT_MAX_CHANNELS);
  } catch (err) {
    for (const s of opened.reverse()) disposeQuietly(s);
    throw err;
  }
}

interface HopSettings {
  node: string;
  NodeSSH: typeof NodeSSH;
  knownHostsPath: string;
  acceptNew: boolean;
  timeoutS: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

/** Connects to one endpoint (directly, or over `sock` from the previous hop) and logs in. */
async function connectHop(ep: SshEndpoint, sock: unknown, s: HopSettings, label: string | null): Promise<NodeSSH> {
  const gate = await prepareHostKeyGate({
    node: s.node,
    host: ep.hostKeyName,
    port: ep.hostKeyPort,
    knownHostsPath: s.knownHostsPath,
    otherFiles: [...ep.userKnownHostsFiles, ...ep.globalKnownHostsFiles],
    acceptNew: s.acceptNew,
  });
  const auth = await authMethods(ep);
  if (auth.methods.length === 0) {
    throw new NodeUnreachableError(
      s.node,
      auth.tried.length > 0
        ? `${prefix(label)}no usable SSH key to log in as ${ep.user} with (${auth.tried.join(', ')})`
        : `${prefix(label)}no SSH key to log in as ${ep.user} with: ` +
            `no identity file exists and no ssh agent is running`,
      `set "identityFile" for node ${s.node} in the config (or IdentityFile in ` +
        `~/.ssh/config), or start ssh-agent and ssh-add a key`,
      { retryable: false },
    );
  }
  const ssh = new s.NodeSSH();
  const config = {
    host: ep.hostname,
    port: ep.port,
    username: ep.user,
    ...(sock ? { sock } : {}),
    readyTimeout: Math.max(1, s.timeoutS) * 1000,
    keepaliveInterval: s.keepaliveIntervalMs,
    keepaliveCountMax: s.keepaliveCountMax,
    hostVerifier: gate.hostVerifier,
    ...(gate.serverHostKey ? { algorithms: { serverHostKey: gate.serverHostKey } } : {}),
    authHandler: auth.methods,
  };
  try {
    await ssh.connect(config);
  } catch (err) {
    disposeQuietly(ssh);
    throw connectFailure(err as ConnectError, ep, s, label, gate, auth.tried);
  }
  return ssh;
}

/**
 * The login methods to offer, in OpenSSH's order (agent keys, then identity files), except that
 * a key named in the node's own config goes first. Passphrase-protected keys can only be used
 * through the agent; they are skipped and named in the failure message.
 */
async function authMethods(ep: SshEndpoint): Promise<{ methods: object[]; tried: string[] }> {
  const agent: object[] = [];
  const files: object[] = [];
  const triedAgent: string[] = [];
  const triedFiles: string[] = [];
  const useAgent =
    ep.agentSocket && !(ep.identitiesOnly && ep.identityFiles.length > 0) && (await agentReachable(ep.agentSocket));
  if (useAgent) {
    agent.push({ type: 'agent', username: ep.user, agent: ep.agentSocket });
    triedAgent.push('the ssh agent');
  }
  for (const file of ep.identityFiles) {
    let key: Buffer;
    try {
      key = await readFile(file);
    } catch {
      continue;
    }
    if (!/PRIVATE KEY/.test(key.subarray(0, 200).toString('latin1'))) continue; // a .pub or something else
    if (isEncryptedKey(key)) {
      triedFiles.push(`${file} (passphrase-protected: add it to ssh-agent)`);
      continue;
    }
    files.push({ type: 'publickey', username: ep.user, key });
    triedFiles.push(file);
  }
  return ep.identityExplicit
    ? { methods: [...files, ...agent], tried: [...triedFiles, ...triedAgent] }
    : { methods: [...agent, ...files], tried: [...triedAgent, ...triedFiles] };
}

/** Whether a private key file needs a passphrase (PEM "ENCRYPTED", or an OpenSSH key with a cipher). */
export function isEncryptedKey(pem: Buffer): boolean {
  const text = pem.toString('latin1');
  if (/ENCRYPTED/.test(text)) return true;
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return false;
  const raw = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (raw.subarray(0, magic.length).toString('latin1') !== magic || raw.length < magic.length + 4) return false;
  const len = raw.readUInt32BE(magic.length);
  return raw.subarray(magic.length + 4, magic.length + 4 + len).toString('latin1') !== 'none';
}

/** Whether SSH_AUTH_SOCK points at a live socket (ssh2 aborts the login on a dead one). */
async function agentReachable(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isSocket()) return false;
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const c = createConnection(path);
    const done = (ok: boolean) => {
      c.destroy();
      resolve(ok);
    };
    c.setTimeout(1000, () => done(false));
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
  });
}

/** Turns whatever ssh2 / node-ssh / the OS said into one sentence for the user. */
function connectFailure(
  err: ConnectError,
  ep: SshEndpoint,
  s: HopSettings,
  label: string | null,
  gate: HostKeyGate,
  tried: string[],
): NodeUnreachableError {
  const refused = gate.refusal();
  if (refused) return refused;
  const where = `${ep.hostname}:${ep.port}`;
  const p = prefix(label);
  const code = err.code;
  const msg = err.message ?? String(err);
  if (code === 'ECONNREFUSED') {
    return new NodeUnreachableError(
      s.node,
      `${p}connection refused on ${where}`,
      `check that sshd runs on ${ep.hostname} and listens on port ${ep.port}`,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
    return new NodeUnreachableError(
      s.node,
      `${p}cannot resolve host name ${ep.hostname}`,
      `check the node's "host" in the config (or HostName in ~/.ssh/config) and your DNS`,
    );
  }
  if (err.level === 'client-timeout' || code === 'ETIMEDOUT' || /timed out/i.test(msg)) {
    return new NodeUnreachableError(
      s.node,
      `${p}timed out after ${s.timeoutS} s connecting to ${where}`,
      `check that ${ep.hostname} is up and reachable (VPN, firewall), ` +
        `or raise "connectTimeout" for the node in the config`,
    );
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new NodeUnreachableError(
      s.node,
      `${p}no route to ${ep.hostname}`,
      `check the network between here and ${ep.hostname}`,
    );
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new NodeUnreachableError(
      s.node,
      `${p}${where} closed the connection during the SSH handshake`,
      `check that port ${ep.port} of ${ep.hostname} is an SSH server and that it accepts this client`,
    );
  }
  if (err.level === 'client-authentication') {
    return new NodeUnreachableError(
      s.node,
      `${p}authentication failed for user ${ep.user} on ${where} (tried ${tried.join(', ')})`,
      `check "user" and "identityFile" for the node (or User/IdentityFile in ` +
        `~/.ssh/config), and that the public key is in ~${ep.user}/.ssh/authorized_keys ` +
        `on the node`,
      { retryable: false },
    );
  }
  if (msg === 'No response from server') {
    return new NodeUnreachableError(
      s.node,
      `${p}${where} closed the connection before the login finished`,
      `check that port ${ep.port} of ${ep.hostname} is an SSH server`,
    );
  }
  if (err.level === 'handshake' || err.level === 'protocol') {
    return new NodeUnreachableError(
      s.node,
      `${p}SSH handshake with ${where} failed: ${msg}`,
      `check that port ${ep.port} of ${ep.hostname} is an SSH server`,
    );
  }
  return new NodeUnreachableError(s.node, `${p}cannot connect to ${where}: ${msg}`, null);
}

function prefix(label: string | null): string {
  return label ? `${label}: ` : '';
}

/**
 * Keeps an 'error' listener on the ssh2 client for its whole life (node-ssh removes its own
 * after connect), so a dropped or stalled link is reported, never thrown at the process.
 */
function watchConnection(ssh: NodeSSH, onLost: (reason: string) => void): void {
  const conn = ssh.connection as unknown as Ssh2Client | null;
  if (!conn) {
    onLost('the connection closed');
    return;
  }
  conn.on('error', (err) => {
    onLost(
      /keepalive/i.test(err.message)
        ? 'the node stopped answering (keepalive timeout)'
        : `connection error: ${err.message}`,
    );
  });
  conn.on('close', () => onLost('the connection closed'));
  conn.on('end', () => onLost('the connection closed'));
}

function disposeQuietly(ssh: NodeSSH): void {
  try {
    const conn = ssh.connection as unknown as Ssh2Client | null;
    conn?.on('error', () => {});
    ssh.dispose();
  } catch {
    /* already gone */
  }
}

interface RunOptions {
  purpose: string;
  stdin?: string | Buffer;
  /** Leave the channel's stdin open (the stream wrapper watches it for EOF). */
  keepStdinOpen?: boolean;
  /** Bytes to feed the channel's stdin as they come, then EOF (send). */
  source?: AsyncIterable<Buffer>;
  onStdout?: (chunk: Buffer) => unknown;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
  /** Keep only the last this-many bytes of each output in the result (long streams). */
  keepBytes?: number;
  /** exec: end the command after this long (exit 124, a note on stderr). */
  timeoutMs?: number;
}

/** Collected output, optionally only its tail, so a stream running for hours holds bounded memory. */
class Output {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Whether output past a `head` cap was dropped. */
  truncated = false;
  /** `tail` keeps the last `cap` bytes (long streams); `head` the first, flagging the rest. */
  constructor(
    private readonly cap: number,
    private readonly keep: 'head' | 'tail' = 'tail',
  ) {}
  push(chunk: Buffer): void {
    if (this.keep === 'head') {
      if (this.truncated) return;
      const room = this.cap - this.bytes;
      if (chunk.length >= room) this.truncated = true;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.chunks.push(part);
      this.bytes += part.length;
      return;
    }
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes > this.cap && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.bytes - this.cap;
      if (first.length <= excess) {
        this.chunks.shift();
        this.bytes -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.bytes -= excess;
      }
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** A counting semaphore: at most `max` channels open at once on one connection. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  constructor(max: number) {
    this.free = Math.max(1, max);
  }
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

class SshTransport implements Transport {
  readonly node: string;
  private readonly ssh: NodeSSH;
  private readonly conn: Ssh2Client;
  private readonly jumps: NodeSSH[];
  private readonly slots: Slots;
  /** Why the link is gone (null while it is up), and the operations to fail when it goes. */
  private lost: string | null = null;
  private closed = false;
  private readonly onLost = new Set<(reason: string) => void>();

  constructor(node: string, ssh: NodeSSH, jumps: NodeSSH[], maxChannels: number) {
    this.node = node;
    this.ssh = ssh;
    this.conn = ssh.connection as unknown as Ssh2Client;
    this.jumps = jumps;
    this.slots = new Slots(maxChannels);
    const lose = (reason: string) => {
      if (this.lost) return;
      this.lost = this.closed ? 'the connection was closed' : reason;
      for (const f of [...this.onLost]) f(this.lost);
    };
    watchConnection(ssh, lose);
    for (const j of jumps) watchConnection(j, (r) => lose(`the jump host connection failed (${r})`));
  }

  async exec(cmd: RemoteCommand): Promise<ExecResult> {
    const stdin = cmd.stdin ?? '';
    if (Buffer.byteLength(cmd.script) <= MAX_ARG_SCRIPT) {
      return this.run(`bash -c ${shq(cmd.script)}`, { purpose: cmd.purpose, stdin, timeoutMs: EXEC_TIMEOUT_MS });
    }
    // Too long for one argument on the node (Linux caps each at 128 KiB): send it on stdin.
    if (stdin.length > 0) throw new Error(`gpuq bug: the script for "${cmd.purpose}" is too long to run with stdin`);
    return this.run(`bash -c ${shq('eval "$(cat)"')}`, {
      purpose: cmd.purpose,
      stdin: cmd.script,
      timeoutMs: EXEC_TIMEOUT_MS,
    });
  }

  async stream(cmd: RemoteCommand, handlers: StreamHandlers): Promise<ExecResult> {
    if (handlers.signal?.aborted) return { stdout: '', stderr: '', code: 143 };
    const stdinB64 = cmd.stdin !== undefined && cmd.stdin.length > 0 ? Buffer.from(cmd.stdin).toString('base64') : '';
    if (Buffer.byteLength(cmd.script) + stdinB64.length > MAX_ARG_SCRIPT) {
      throw new Error(
        `gpuq bug: the script and stdin for "${cmd.purpose}" are too long to stream (over ${MAX_ARG_SCRIPT} bytes)`,
      );
    }
    return this.run(`bash -c ${shq(STREAM_WRAPPER)} gpuq-stream ${shq(cmd.script)} ${shq(stdinB64)}`, {
      purpose: cmd.purpose,
      keepStdinOpen: true,
      onStdout: handlers.onStdout,
      onStderr: handlers.onStderr,
      signal: handlers.signal,
      // Whoever gets the chunks live has them all; the result keeps a tail for error messages.
      keepBytes: handlers.onStdout || handlers.onStderr ? STREAM_RESULT_TAIL : undefined,
    });
  }

  async send(cmd: RemoteCommand, source: AsyncIterable<Buffer>): Promise<ExecResult> {
    if (cmd.stdin !== undefined) throw new Error(`gpuq bug: "${cmd.purpose}" has both stdin and a source`);
    if (Buffer.byteLength(cmd.script) > MAX_ARG_SCRIPT)
      throw new Error(`gpuq bug: the script for "${cmd.purpose}" is too long to send with`);
    return this.run(`bash -c ${shq(cmd.script)}`, { purpose: cmd.purpose, source });
  }

  async upload(
    localPath: string,
    remotePath: string,
    opts: { mode?: number; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<void> {
    const mode = opts.mode ?? 0o600;
    const remote = remotePath.startsWith('~/') ? remotePath.slice(2) : remotePath;
    const { size } = await stat(localPath);
    await this.withLink(`upload ${localPath}`, async () => {
      const release = await this.slots.acquire();
      let sftp: Ssh2Sftp | null = null;
      try {
        sftp = (await this.ssh.requestSFTP()) as unknown as Ssh2Sftp;
        const s = sftp;
        s.on('error', () => {
          /* a dropped link is reported through the connection */
        });
        // Create (or truncate) it with its final mode first: the content is never readable by others.
        try {
          await precreate(s, remote, mode);
        } catch (err) {
          if (!isNoSuchFile(err)) throw err;
          await mkdirp(s, pathPosix.dirname(remote));
          await precreate(s, remote, mode);
        }
        await new Promise<void>((resolve, reject) => {
          s.fastPut(
            localPath,
            remote,
            { mode, step: (done: number, _chunk: number, total: number) => opts.onProgress?.(done, total) },
            (err) => (err ? reject(err) : resolve()),
          );
        });
        opts.onProgress?.(size, size);
      } catch (err) {
        if (this.lost) throw err;
        // The node answered (a path it refuses, a full disk): its fault, not a lost link.
        throw new NodeFaultError(
          this.node,
          `could not upload ${localPath} to ${remotePath} on node ${this.node}: ${oneLine(err)}`,
        );
      } finally {
        try {
          sftp?.end();
        } catch {
          /* link gone */
        }
        release();
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    disposeQuietly(this.ssh);
    for (const j of [...this.jumps].reverse()) disposeQuietly(j);
  }

  /** Runs `fn`, failing it with NodeUnreachableError as soon as the link is lost. */
  private async withLink<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.assertUp(what);
    let onLost!: (reason: string) => void;
    const lostP = new Promise<never>((_, reject) => {
      onLost = (reason) => reject(this.lostError(what, reason));
    });
    lostP.catch(() => {});
    this.onLost.add(onLost);
    try {
      return await Promise.race([fn(), lostP]);
    } finally {
      this.onLost.delete(onLost);
    }
  }

  private assertUp(what: string): void {
    if (this.closed) throw new Error(`gpuq bug: ${what} on node ${this.node} after its connection was closed`);
    if (this.lost) throw this.lostError(what, this.lost);
  }

  private lostError(what: string, reason: string): NodeUnreachableError {
    return new NodeUnreachableError(
      this.node,
      `connection lost during "${what}" (${reason})`,
      'check the node and its network, then run the command again',
    );
  }

  /** Opens an exec channel and runs `command` on it, collecting or streaming its output. */
  private async run(command: string, o: RunOptions): Promise<ExecResult> {
    const release = await this.slots.acquire();
    try {
      return await this.withLink(o.purpose, async () => {
        // Handlers go on inside the open callback: the exit can arrive in the same tick.
        const { result } = await this.openChannel(command, o.purpose, (ch) => ({ result: this.runOnChannel(ch, o) }));
        return result;
      });
    } finally {
      release();
    }
  }

  /**
   * Opens an exec channel. sshd frees a session slot only after both sides have closed it, so
   * a burst of short commands can briefly exceed MaxSessions: retry that refusal for ~3 s.
   */
  private async openChannel<T extends object>(
    command: string,
    purpose: string,
    onOpen: (ch: Ssh2Channel) => T,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.assertUp(purpose);
      try {
        return await new Promise<T>((resolve, reject) => {
          try {
            this.conn.exec(command, {}, (e, ch) => (e ? reject(e) : resolve(onOpen(ch))));
          } catch (e) {
            reject(e);
          }
        });
      } catch (e) {
        if (this.lost) throw this.lostError(purpose, this.lost);
        if (attempt >= 15 || !/open fail/i.test(oneLine(e))) {
          throw new NodeUnreachableError(
            this.node,
            `the node refused to run "${purpose}" (${oneLine(e)})`,
            'the node may limit sessions per connection (MaxSessions in sshd_config); try again',
          );
        }
        await new Promise((r) => setTimeout(r, Math.min(25 * (attempt + 1), 300)));
      }
    }
  }

  private runOnChannel(ch: Ssh2Channel, o: RunOptions): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      // exec keeps the head of each output up to the cap and ends the command past it.
      const out = o.keepBytes === undefined ? new Output(EXEC_OUTPUT_CAP, 'head') : new Output(o.keepBytes);
      const err = o.keepBytes === undefined ? new Output(EXEC_OUTPUT_CAP, 'head') : new Output(o.keepBytes);
      let code: number | null = null;
      let exited = false;
      let aborted = false;
      let settled = false;
      let abortTimer: NodeJS.Timeout | undefined;
      let timedOut = false;
      let execTimer: NodeJS.Timeout | undefined;
      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(abortTimer);
        o.signal?.removeEventListener('abort', onAbort);
        clearTimeout(execTimer);
        const truncated = out.truncated || err.truncated;
        const result = { stdout: out.text(), stderr: err.text(), ...(truncated ? { truncated } : {}) };
        if (timedOut) {
          const note = `gpuq: the node did not finish "${o.purpose}" within ${Math.round((o.timeoutMs ?? 0) / 1000)} s`;
          resolve({
            ...result,
            stderr: `${result.stderr}${result.stderr.endsWith('\n') || !result.stderr ? '' : '\n'}${note}\n`,
            code: 124,
          });
        } else if (exited && code !== null) resolve({ ...result, code });
        else if (aborted) resolve({ ...result, code: 143 });
        else reject(this.lostError(o.purpose, this.lost ?? 'the channel closed without an exit status'));
      };
      const onAbort = () => {
        if (aborted) return;
        aborted = true;
        try {
          ch.end(); // EOF on the remote stdin: the stream wrapper kills the process group
        } catch {
          /* already closed */
        }
        abortTimer = setTimeout(() => {
          try {
            ch.close();
          } catch {
            /* already closed */
          }
          finish();
        }, ABORT_GRACE_MS);
      };
      const overflow = () => {
        if ((out.truncated || err.truncated) && !aborted) onAbort();
      };
      ch.on('data', (chunk) => {
        out.push(chunk);
        overflow();
        const wait = pauseFor(o.onStdout?.(chunk));
        if (wait) {
          // Backpressure: a paused channel stops the node's sender once the SSH window fills.
          ch.pause();
          void wait.finally(() => ch.resume());
        }
      });
      ch.stderr.on('data', (chunk) => {
        err.push(chunk);
        overflow();
        o.onStderr?.(chunk);
      });
      ch.on('exit', (c, sig) => {
        exited = true;
        code = typeof c === 'number' ? c : signalExitCode(sig);
      });
      ch.on('error', () => {
        /* reported through 'close' / the connection */
      });
      ch.on('close', finish);
      if (o.source) {
        pump(ch, o.source).catch((e: unknown) => {
          try {
            ch.close();
          } catch {
            /* already closed */
          }
          if (!settled) {
            settled = true;
            clearTimeout(execTimer);
            o.signal?.removeEventListener('abort', onAbort);
            reject(e);
          }
        });
      } else if (o.stdin !== undefined && o.stdin.length > 0) ch.end(o.stdin);
      else if (!o.keepStdinOpen) ch.end();
      if (o.signal?.aborted) onAbort();
      else o.signal?.addEventListener('abort', onAbort, { once: true });
      if (o.timeoutMs !== undefined)
        execTimer = setTimeout(() => {
          if (settled || exited) return;
          timedOut = true;
          onAbort();
        }, o.timeoutMs);
    });
  }
}

/** Writes `source` into a channel's stdin, waiting for the window to drain, then sends EOF. */
async function pump(ch: Ssh2Channel, source: AsyncIterable<Buffer>): Promise<void> {
  let closed = false;
  const onClose = () => {
    closed = true;
  };
  ch.once('close', onClose);
  try {
    for await (const chunk of source) {
      if (closed) return;
      if (!ch.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            ch.removeListener('drain', done);
            ch.removeListener('close', done);
            resolve();
          };
          ch.once('drain', done);
          ch.once('close', done);
        });
      }
    }
    if (!closed) ch.end();
  } finally {
    ch.removeListener('close', onClose);
  }
}

/** 128 + the signal's number, as a shell reports a death by signal. */
function signalExitCode(sig: string | undefined): number | null {
  if (!sig) return null;
  const n = (osConstants.signals as Record<string, number>)[`SIG${sig.replace(/^SIG/, '')}`];
  return n ? 128 + n : 255;
}

async function precreate(sftp: Ssh2Sftp, path: string, mode: number): Promise<void> {
  const h = await new Promise<SftpHandle>((resolve, reject) =>
    sftp.open(path, 'w', { mode }, (e, handle) => (e ? reject(e) : resolve(handle))),
  );
  try {
    await new Promise<void>((resolve, reject) => sftp.fchmod(h, mode, (e) => (e ? reject(e) : resolve())));
  } finally {
    await new Promise<void>((resolve) => sftp.close(h, () => resolve()));
  }
}

async function mkdirp(sftp: Ssh2Sftp, dir: string): Promise<void> {
  if (dir === '.' || dir === '/' || dir === '') return;
  const exists = await new Promise<boolean>((resolve) => sftp.stat(dir, (e, st) => resolve(!e && st.isDirectory())));
  if (exists) return;
  await mkdirp(sftp, pathPosix.dirname(dir));
  await new Promise<void>((resolve, reject) =>
    sftp.mkdir(dir, (e) => (e && !/exist|failure/i.test(e.message) ? reject(e) : resolve())),
  );
}

function isNoSuchFile(err: unknown): boolean {
  const e = err as { code?: number | string; message?: string };
  return e?.code === 2 || e?.code === 'ENOENT' || /no such file/i.test(e?.message ?? '');
}

/** Single-quotes a string for a POSIX shell. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
