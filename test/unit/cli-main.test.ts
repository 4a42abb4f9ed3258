/**
 * The entry's output guarantees, in process: main() resolves only once a slow stdout or stderr has
 * taken every byte, keeps the exit code, and turns a closed stdout (EPIPE) into a quiet 141.
 */
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { EXIT_BROKEN_PIPE, main } from '../../src/cli/main.js';

/** A stream that takes each chunk only after `ms`, keeping what it took. */
function slowSink(ms: number): Writable & { taken: string } {
  const sink = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _enc, cb) {
      setTimeout(() => {
        sink.taken += chunk.toString('utf8');
        cb();
      }, ms);
    },
  }) as Writable & { taken: string };
  sink.taken = '';
  return sink;
}

/** A stream whose reader has gone: every write fails with EPIPE. */
function closedPipe(): Writable {
  return new Writable({
    write(_chunk, _enc, cb) {
      cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    },
  });
}

const io = (stdout: Writable, stderr: Writable) => ({
  stdout,
  stderr,
  stdin: new PassThrough(),
  env: { NO_COLOR: '1' },
  cwd: process.cwd(),
});

describe('main', () => {
  it('resolves after a slow stdout took the whole help text', async () => {
    const out = slowSink(5);
    const err = slowSink(0);
    const code = await main(['node', 'gpuq', 'help'], io(out, err));
    expect(code).toBe(0);
    expect(out.writableLength).toBe(0);
    expect(out.taken).toMatch(/^Usage: gpuq /);
    expect(out.taken).toMatch(/help \[command\]\s+display help for command\n/);
    expect(out.taken).toMatch(/the README has the tour and the config\.\n$/);
  });

  it('the help answers: exit codes, variables, defaults with units, nothing unbuilt, no placeholder', async () => {
    const top = slowSink(0);
    expect(await main(['node', 'gpuq', '--help'], io(top, slowSink(0)))).toBe(0);
    for (const code of ['0 succeeded', '10 failed', '11 timeout', '12 out of memory', '16 cancelled', '17 lost'])
      expect(top.taken).toContain(code);
    for (const v of ['GPUQ_HOME', 'GPUQ_SSH_CONFIG', 'GPUQ_DEBUG=1', 'NO_COLOR', 'FORCE_COLOR'])
      expect(top.taken).toContain(v);
    const sub = slowSink(0);
    expect(await main(['node', 'gpuq', 'submit', '--help'], io(sub, slowSink(0)))).toBe(0);
    expect(sub.taken).toMatch(/--timeout <dur>\s+wall-clock limit[\s\S]*\(built-in\s+default: 1h\)/);
    expect(sub.taken).toMatch(/--memory <size>[\s\S]*\(built-in default: 16g\)/);
    expect(sub.taken).toMatch(/--cpu-time <dur>[\s\S]*\(built-in default: none\)/);
    expect(sub.taken).not.toMatch(/default: \[\]/);
    // Docker isolation is built: its options are offered.
    expect(sub.taken).toMatch(/--isolation <kind>[\s\S]*--image <name>[\s\S]*--keep-container/);
    const bad = slowSink(0);
    expect(await main(['node', 'gpuq', 'list', '--bogus'], io(slowSink(0), bad))).toBe(2);
    expect(bad.taken).toContain('(run gpuq list --help for its options)');
    expect(`${top.taken}${sub.taken}${bad.taken}`).not.toContain('COMMAND');
  });

  it('keeps a usage error exit code and resolves after a slow stderr took the message', async () => {
    const out = slowSink(0);
    const err = slowSink(5);
    const code = await main(['node', 'gpuq', 'nosuch'], io(out, err));
    expect(code).toBe(2);
    expect(err.taken).toBe("error: unknown command 'nosuch'\n(run gpuq --help for the commands)\n");
  });

  it('a closed stdout ends the run with 141 and nothing on stderr', async () => {
    const err = slowSink(0);
    const code = await main(['node', 'gpuq', 'help'], io(closedPipe(), err));
    expect(code).toBe(EXIT_BROKEN_PIPE);
    expect(EXIT_BROKEN_PIPE).toBe(141);
    expect(err.taken).toBe('');
  });
});
