/**
 * The embedded `local` node: runs the same bash scripts on this machine with execa.
 */
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa } from 'execa';
import type { ExecResult, RemoteCommand, StreamHandlers, Transport } from './transport.js';

/** Makes the transport for a node whose jobs run on this machine. */
export function localTransport(node: string): Transport {
  async function exec(cmd: RemoteCommand): Promise<ExecResult> {
    const r = await execa('bash', ['-c', cmd.script], {
      input: cmd.stdin,
      reject: false,
      stripFinalNewline: false,
      encoding: 'utf8',
    });
    return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), code: r.exitCode ?? 128 + 9 };
  }

  async function stream(cmd: RemoteCommand, h: StreamHandlers): Promise<ExecResult> {
    // Its own process group, so aborting ends the whole script (tail, flock...) at once.
    const child = execa('bash', ['-c', cmd.script], {
      input: cmd.stdin,
      reject: false,
      detached: true,
      cleanup: true,
      buffer: false,
      encoding: 'buffer',
    });
    const kill = () => {
      if (child.pid) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    };
    if (h.signal) {
      if (h.signal.aborted) kill();
      else h.signal.addEventListener('abort', kill, { once: true });
    }
    child.stdout?.on('data', (c: Buffer) => h.onStdout?.(c));
    child.stderr?.on('data', (c: Buffer) => h.onStderr?.(c));
    try {
      const r = await child;
      return { stdout: '', stderr: '', code: r.exitCode ?? 128 + 15 };
    } finally {
      h.signal?.removeEventListener('abort', kill);
    }
  }

  async function upload(localPath: string, remotePath: string, opts?: { mode?: number; onProgress?: (d: number, t: number) => void }): Promise<void> {
    await mkdir(dirname(remotePath), { recursive: true, mode: 0o700 });
    await copyFile(localPath, remotePath);
    await chmod(remotePath, opts?.mode ?? 0o600);
  }

  return { node, exec, stream, upload, close: async () => undefined };
}
