/**
 * The CLI's own entry (main(), what bin/gpuq.js runs) in the test's process, for inputs refused
 * before any node is asked: a call costs milliseconds instead of a node start (about 0.3 CPU-s).
 * Tests that use it send a case of each kind through the real binary too.
 */
import { PassThrough, Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';
import { type Home, REPO, type RunResult } from './cli.js';

/** Runs `gpuq ARGS` through main() in this process, with the home's environment; its result as gpuq()'s. */
export async function gpuqInProcess(h: Home, args: string[], opts: { cwd?: string } = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const sink = (add: (t: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        add(chunk.toString('utf8'));
        cb();
      },
    });
  const code = await main(['node', 'gpuq', ...args], {
    stdout: sink((t) => (stdout += t)),
    stderr: sink((t) => (stderr += t)),
    stdin: new PassThrough(),
    env: h.env,
    cwd: opts.cwd ?? REPO,
  });
  return { code, signal: null, stdout, stderr };
}
