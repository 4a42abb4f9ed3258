/**
 * The terminal status line's drawing (src/cli/status-line.ts): `\r` and clear-line before each
 * new text, nothing redrawn when the text is the same, cleared before a verdict prints and not
 * drawn again once every job has ended, cut to the terminal's width, and shown only on a
 * terminal without --follow or -q.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/app.js';
import { startStatusLine, wantsStatusLine } from '../../src/cli/status-line.js';
import type { Job } from '../../src/core/types.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const CLEAR = '\r\u001b[2K';

function terminal(columns = 80, isTTY = true, env: NodeJS.ProcessEnv = { TERM: 'xterm' }) {
  const stderr = Object.assign(new PassThrough(), { isTTY, columns });
  let written = '';
  stderr.on('data', (d: Buffer) => (written += d.toString()));
  const io = { stdout: new PassThrough(), stderr, stdin: new PassThrough(), env, cwd: '/' } as unknown as Io;
  return { io, written: () => written };
}

const job = (state: Job['state'], startedAgoMs = 5000): Job =>
  ({
    id: 'ab12cd34',
    state,
    node: 'local',
    startedAt: new Date(NOW - startedAgoMs).toISOString(),
    endedAt: state === 'done' ? new Date(NOW).toISOString() : null,
    queue: null,
  }) as Job;

describe('the status line', () => {
  it('rewrites one line in place, clears it for the verdict and does not draw it again', async () => {
    const t = terminal();
    const line = startStatusLine(t.io, () => NOW);
    line.watch.onProgress({ job: job('running'), sample: null, queue: null });
    line.watch.onProgress({ job: job('running'), sample: null, queue: null });
    line.watch.onProgress({ job: job('running', 6000), sample: null, queue: null });
    line.ended(job('done'), () => t.io.stderr.write('ab12cd34 succeeded\n'));
    line.stop();
    await new Promise((r) => setImmediate(r));
    expect(t.written()).toBe(`${CLEAR}running 5s${CLEAR}running 6s${CLEAR}ab12cd34 succeeded\n`);
  });

  it('prints notes around the line and cuts it to the terminal', async () => {
    const t = terminal(20);
    const line = startStatusLine(t.io, () => NOW);
    line.watch.onProgress({ job: { ...job('queued'), node: 'a-node-with-a-long-name' }, sample: null, queue: null });
    line.around(() => t.io.stderr.write('gpuq: reconnected\n'));
    line.stop();
    await new Promise((r) => setImmediate(r));
    const shown = 'queued on a-node-w…';
    expect(t.written()).toBe(`${CLEAR}${shown}${CLEAR}gpuq: reconnected\n${CLEAR}${shown}${CLEAR}`);
  });

  it('shows only on a terminal, without --follow or -q', () => {
    expect(wantsStatusLine(terminal().io, {})).toBe(true);
    expect(wantsStatusLine(terminal(80, false).io, {})).toBe(false);
    expect(wantsStatusLine(terminal(80, true, { TERM: 'dumb' }).io, {})).toBe(false);
    expect(wantsStatusLine(terminal().io, { follow: true })).toBe(false);
    expect(wantsStatusLine(terminal().io, { quiet: true })).toBe(false);
  });
});
