/**
 * The embedded `local` node: runs the same bash scripts on this machine.
 *
 * Scripts go through node:child_process. execa did the long-running streams (follow, wait) before,
 * but importing it loaded ~150 modules, ~0.12 s of CPU on every `gpuq wait` of a local job; the one
 * thing it did for us (a process group of its own, ended on abort and on exit) is a few lines here.
 */
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { NodeFaultError } from '../core/errors.js';
import {
  EXEC_OUTPUT_CAP,
  type ExecResult,
  pauseFor,
  type RemoteCommand,
  type StreamHandlers,
  type Transport,
} from './transport.js';

/** What the node side inherits of this process's environment: the account and the locale, no more. */
// SLURM_CONF: where a Slurm node without a host (sbatch on this machine) finds its cluster's config.
const NODE_ENV_KEYS = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'SLURM_CONF'];

/**
 * The environment the local node's scripts (and so the supervisor) run with: PATH, the account,
 * the locale. Never the submitter's agent socket, tokens or GPUQ_HOME: a job on an SSH node gets
 * none of them either, and the supervisor hands the program a clean list of its own.
 */
export function nodeEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (NODE_ENV_KEYS.includes(k) || k.startsWith('LC_'))) out[k] = v;
  }
  return out;
}

/**
 * bash for a script, without startup files: bash reads ~/.bashrc even non-interactively when its
 * stdin is a socket (it takes that for sshd), and node's pipes are sockets. A user's .bashrc can
 * take seconds (pyenv's rehash waits up to a minute on its lock) or print into gpuq's answers.
 */
const BASH_ARGS = (script: string): string[] => ['--norc', '--noprofile', '-c', script];

/** Makes the transport for a node whose jobs run on this machine. */
export function localTransport(node: string): Transport {
  const env = nodeEnv(process.env);
  // The kills of the streams still running, for our exit: one 'exit' listener for all of them
  // (a listener each went past node's limit of 10 with `gpuq wait` of many jobs, and warned).
  const live = new Set<() => void>();
  const onExit = () => {
    for (const k of live) k();
  };
  const track = (kill: () => void) => {
    if (live.size === 0) process.once('exit', onExit);
    live.add(kill);
  };
  const untrack = (kill: () => void) => {
    live.delete(kill);
    if (live.size === 0) process.removeListener('exit', onExit);
  };
  // bash could not be started here (no bash, no processes left): this machine's fault, not a link's.
  const bashFailed = (cmd: RemoteCommand, e: Error) =>
    new NodeFaultError(node, `on node ${node}, could not run bash to ${cmd.purpose}: ${e.message}`);
  function exec(cmd: RemoteCommand, source?: AsyncIterable<Buffer>): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawn('bash', BASH_ARGS(cmd.script), { stdio: ['pipe', 'pipe', 'pipe'], env });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const size = { out: 0, err: 0 };
      let truncated = false;
      // Output past the cap ends the command: what was read so far comes back, flagged.
      const collect = (into: Buffer[], key: 'out' | 'err') => (c: Buffer) => {
        if (truncated) return;
        const room = EXEC_OUTPUT_CAP - size[key];
        into.push(c.length > room ? c.subarray(0, room) : c);
        size[key] += c.length;
        if (size[key] >= EXEC_OUTPUT_CAP) {
          truncated = true;
          child.stdout.destroy();
          child.stderr.destroy();
          child.kill('SIGKILL');
        }
      };
      child.stdout.on('data', collect(out, 'out'));
      child.stderr.on('data', collect(err, 'err'));
      child.on('error', (e) => reject(bashFailed(cmd, e)));
      child.on('close', (code, signal) => {
        const text = (b: Buffer[]) => Buffer.concat(b).toString('utf8');
        const result = { stdout: text(out), stderr: text(err), code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15) };
        resolve(truncated ? { ...result, truncated } : result);
      });
      child.stdin.on('error', () => undefined); // a script that does not read its stdin
      if (!source) child.stdin.end(cmd.stdin ?? '');
      else
        feed(child.stdin, source).catch((e: unknown) => {
          child.kill('SIGKILL');
          reject(e);
        });
    });
  }

  async function stream(cmd: RemoteCommand, h: StreamHandlers): Promise<ExecResult> {
    // Aborted already (Ctrl-C while this stream was being set up): start nothing.
    if (h.signal?.aborted) return { stdout: '', stderr: '', code: 128 + 15 };
    // Its own process group, so aborting ends the whole script (tail, flock...) at once, and so
    // does this process's exit: a follower or waiter left behind would hold the job's files.
    const child = spawn('bash', BASH_ARGS(cmd.script), { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true });
    const kill = () => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // no group yet (the child has not reached its setsid) or already gone: the child itself
        child.kill('SIGTERM');
      }
    };
    h.signal?.addEventListener('abort', kill, { once: true });
    track(kill);
    child.stdout.on('data', (c: Buffer) => {
      const wait = pauseFor(h.onStdout?.(c));
      if (wait) {
        child.stdout.pause();
        void wait.finally(() => child.stdout.resume());
      }
    });
    child.stderr.on('data', (c: Buffer) => h.onStderr?.(c));
    child.stdin.on('error', () => undefined); // a script that does not read its stdin
    child.stdin.end(cmd.stdin ?? '');
    try {
      return await new Promise<ExecResult>((resolve, reject) => {
        child.on('error', (e) => reject(bashFailed(cmd, e)));
        child.on('close', (code, signal) =>
          resolve({ stdout: '', stderr: '', code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15) }),
        );
      });
    } finally {
      h.signal?.removeEventListener('abort', kill);
      untrack(kill);
    }
  }

  async function upload(
    localPath: string,
    remotePath: string,
    opts?: { mode?: number; onProgress?: (d: number, t: number) => void },
  ): Promise<void> {
    await mkdir(dirname(remotePath), { recursive: true, mode: 0o700 });
    await copyFile(localPath, remotePath);
    await chmod(remotePath, opts?.mode ?? 0o600);
  }

  return {
    node,
    exec: (cmd) => exec(cmd),
    send: (cmd, source) => exec(cmd, source),
    stream,
    upload,
    close: async () => undefined,
  };
}

/** Writes `source` into a child's stdin with backpressure, then closes it. */
async function feed(stdin: NodeJS.WritableStream, source: AsyncIterable<Buffer>): Promise<void> {
  let closed = false;
  stdin.once('close', () => {
    closed = true;
  });
  for await (const chunk of source) {
    if (closed) return;
    if (!stdin.write(chunk))
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.removeListener('drain', done);
          stdin.removeListener('close', done);
          resolve();
        };
        stdin.once('drain', done);
        stdin.once('close', done);
      });
  }
  stdin.end();
}
