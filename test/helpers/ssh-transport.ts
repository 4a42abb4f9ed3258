/**
 * Shared by the ssh-transport-*.test.ts files: a private sshd started for the file, a known_hosts
 * with its right key, connect options and small waiting helpers with deadlines.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { NodeConfig } from '../../src/config/types.js';
import { NodeUnreachableError } from '../../src/core/errors.js';
import { connectSsh, type SshConnectOptions } from '../../src/transport/ssh.js';
import type { Transport } from '../../src/transport/transport.js';
import { type Sshd, startSshd } from './sshd.js';

export interface SshdContext {
  /** The file's daemon (set in beforeAll). */
  sshd: Sshd;
  /** A temp folder for the file (sticky, world-writable: the node user writes gates), removed after it. */
  work: string;
  /** known_hosts with the daemon's right key, for the tests that are not about host keys. */
  goodKnownHosts: string;
  /** Connect options trusting the daemon, with its ssh config. */
  opts(extra?: Partial<SshConnectOptions>): SshConnectOptions;
  /** Connects (to the daemon by default), runs fn, and closes the transport whatever happens. */
  withTransport<T>(fn: (t: Transport) => Promise<T>, node?: NodeConfig, o?: SshConnectOptions): Promise<T>;
}

/** Starts a private sshd (ed25519 and ECDSA host keys) for the calling test file. */
export function sharedSshd(): SshdContext {
  const ctx: SshdContext = {
    sshd: undefined as unknown as Sshd,
    work: '',
    goodKnownHosts: '',
    opts: (extra = {}) => ({ knownHostsPath: ctx.goodKnownHosts, sshConfigFile: ctx.sshd.sshConfigPath, ...extra }),
    async withTransport(fn, node, o) {
      const t = await connectSsh(node ?? ctx.sshd.nodeConfig(), o ?? ctx.opts());
      try {
        return await fn(t);
      } finally {
        await t.close();
      }
    },
  };
  beforeAll(async () => {
    ctx.sshd = await startSshd({ hostKeys: ['ed25519', 'ecdsa'] });
    ctx.work = await mkdtemp(join(tmpdir(), 'gpuq-ssh-test-'));
    // The node user (another account when tests run as root) touches gate files here.
    await chmod(ctx.work, 0o1777);
    ctx.goodKnownHosts = join(ctx.work, 'known_hosts');
    await ctx.sshd.writeKnownHosts(ctx.goodKnownHosts, 'right');
  });
  afterAll(async () => {
    await ctx.sshd?.cleanup();
    if (ctx.work) await rm(ctx.work, { recursive: true, force: true });
  });
  return ctx;
}

/** Asserts that a connect or call fails as "node unreachable" (exit 3) and returns the error. */
export async function expectUnreachable(p: Promise<unknown>): Promise<NodeUnreachableError> {
  const err = await p.then(
    () => {
      throw new Error('expected a NodeUnreachableError, but it succeeded');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NodeUnreachableError);
  expect((err as NodeUnreachableError).exitCode).toBe(3);
  return err as NodeUnreachableError;
}

/** Waits until none of the pids is alive on the node (gone, or a zombie awaiting its reaper). */
export async function remoteGone(t: Transport, pids: number[], withinMs = 10_000): Promise<string> {
  const deadline = Date.now() + withinMs;
  let alive = '';
  while (Date.now() < deadline) {
    const r = await t.exec({
      purpose: 'check pids',
      script: `${pids
        .map(
          (p) => `s=$(sed 's/.*) //' /proc/${p}/stat 2>/dev/null | cut -c1); [ -n "$s" ] && [ "$s" != Z ] && echo ${p}`,
        )
        .join('; ')}; true`,
    });
    alive = r.stdout.trim();
    if (alive === '') return '';
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return alive;
}

/** Polls `check` every 20 ms; throws naming `what` when it is still false after `ms`. */
export async function waitFor(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits (with a deadline) until a gate file exists: the remote side got that far. */
export function gate(path: string, what: string, ms = 20_000): Promise<void> {
  return waitFor(() => existsSync(path), what, ms);
}

/** A local port nothing listens on. */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
