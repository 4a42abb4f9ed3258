/**
 * The live view as frames of text (ink-testing-library): what shows at 80x24 and 100x30,
 * following a resize, the verdict banner and diagnosis, and the keys.
 */
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup } from 'ink-testing-library';
import type { WatchEvent, WatchResult } from '../../src/tui/events.js';
import { WatchView, type WatchSink } from '../../src/tui/WatchView.js';
import { diagnosisText } from '../../src/tui/diagnosis.js';
import { NOW, OOM, doneJob, runningJob, sample } from '../helpers/tui-fixtures.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const KEY = { up: '\u001B[A', down: '\u001B[B', pageUp: '\u001B[5~', pageDown: '\u001B[6~', ctrlC: '\u0003' };

/** Mounts the view with a hand-fed event source; returns it and the feeding function. */
function mount(opts: { width?: number; height?: number; exitOnDone?: boolean; onCancel?: () => Promise<void> } = {}) {
  let sink: WatchSink | null = null;
  const onExit = vi.fn<(r: WatchResult) => void>();
  const onCancel = vi.fn(opts.onCancel ?? (() => Promise.resolve()));
  const ui = render(
    <WatchView
      subscribe={(s) => {
        sink = s;
        return () => undefined;
      }}
      onCancel={onCancel}
      loadDiagnosis={(job, peaks) => Promise.resolve(diagnosisText(job, peaks))}
      now={() => NOW}
      tickMs={0}
      batchMs={0}
      color={false}
      exitOnDone={opts.exitOnDone ?? false}
      {...(opts.width !== undefined ? { width: opts.width } : {})}
      {...(opts.height !== undefined ? { height: opts.height } : {})}
      onExit={onExit}
    />,
  );
  const settle = (): Promise<void> => settleOn(ui.frames);
  const feed = async (...events: WatchEvent[]): Promise<void> => {
    for (const e of events) sink?.event(e);
    await settle();
  };
  const frame = (): string => ui.lastFrame() ?? '';
  return { ui, feed, frame, settle, onExit, onCancel };
}

/** Waits until React has committed and ink drawn: the frame count stays put for 40 ms. */
async function settleOn(frames: readonly unknown[]): Promise<void> {
  let seen = -1;
  for (let i = 0; i < 50 && seen !== frames.length; i++) {
    seen = frames.length;
    await sleep(40);
  }
}

/** A running job with ten samples, stdout and stderr lines. */
async function busy(m: ReturnType<typeof mount>, lines = 6): Promise<void> {
  await m.feed({ type: 'job', job: runningJob() }, { type: 'connection', status: 'connected' });
  await m.feed(...Array.from({ length: 10 }, (_, i): WatchEvent => ({ type: 'sample', sample: sample(i) })));
  await m.feed(
    ...Array.from(
      { length: lines },
      (_, i): WatchEvent => ({
        type: 'log',
        stream: i % 3 === 2 ? 'stderr' : 'stdout',
        line: `${i % 3 === 2 ? 'warning' : 'epoch'} ${i}`,
        at: NOW,
      }),
    ),
  );
}

function rows(frame: string): string[] {
  return frame.split('\n');
}

afterEach(() => cleanup());

describe('watch view layout', () => {
  it('shows header, resources, log tail and status within 80x24', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m);
    const f = m.frame();
    expect(f).toContain('● running');
    expect(f).toContain('abc12345');
    expect(f).toContain('train.py');
    expect(f).toContain('node gpu1');
    expect(f).toContain('GPU 0');
    expect(f).toMatch(/elapsed 1m30s \/ 10m00s [█░]+\s+15%/);
    expect(f).toMatch(/RSS\s+110 MiB \/ 200 MiB\s+[█░]+\s+55%\s+peak 110 MiB/);
    expect(f).toMatch(/CPU\s+95%/);
    expect(f).toMatch(/procs\s+3 \/ 64/);
    expect(f).toMatch(/GPU0\s+mem 1.00 GiB\s+[█░]+\s+40%\s+job 900 MiB/);
    expect(f).toContain('disk   12.0 KiB');
    expect(f).toMatch(/[▁▂▃▄▅▆▇█]{5,}/);
    expect(f).toContain('  epoch 0');
    expect(f).toContain('! warning 2');
    expect(f).toContain('● connected');
    expect(rows(f).length).toBeLessThanOrEqual(23);
    for (const r of rows(f)) expect(r.length).toBeLessThanOrEqual(80);
  });

  it('follows the terminal size when it changes', async () => {
    const m = mount();
    const out = m.ui.stdout as unknown as { columns: number; rows: number; emit(e: string): void };
    Object.defineProperty(out, 'columns', { value: 100, configurable: true });
    Object.defineProperty(out, 'rows', { value: 30, configurable: true });
    out.emit('resize');
    await busy(m, 40);
    const wide = rows(m.frame());
    expect(wide.length).toBe(29);
    expect(Math.max(...wide.map((r) => r.length))).toBeGreaterThan(80);
    Object.defineProperty(out, 'columns', { value: 80, configurable: true });
    Object.defineProperty(out, 'rows', { value: 24, configurable: true });
    out.emit('resize');
    await m.settle();
    const narrow = rows(m.frame());
    expect(narrow.length).toBe(23);
    for (const r of narrow) expect(r.length).toBeLessThanOrEqual(80);
    expect(m.frame()).toContain('epoch 39');
  });

  it('says the job is ending once its processes are gone, keeping their last figures', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    await m.feed({ type: 'sample', sample: sample(10, { procs: 0, rssBytes: 0, cpuPct: 0 }) });
    expect(m.frame()).toContain('● ending · collecting the verdict');
    expect(m.frame()).toMatch(/RSS\s+110 MiB \/ 200 MiB/);
  });

  it('says when it is reconnecting and in how many seconds', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    await m.feed({ type: 'connection', status: 'reconnecting', retryInS: 4, reason: 'connection reset', at: NOW });
    expect(m.frame()).toContain('reconnecting in 4 s (connection reset)');
    await m.feed({ type: 'connection', status: 'connected' });
    expect(m.frame()).toContain('● connected');
  });
});

describe('watch view verdict', () => {
  it('shows the banner with class, exit, summary and first hint, and d opens the diagnosis', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m);
    await m.feed({ type: 'verdict', job: doneJob() });
    const f = m.frame();
    expect(f).toContain('done · oom');
    expect(f).toContain('✘ oom (cgroup)  exit 137 · SIGKILL');
    expect(f).toContain('Killed for memory at the memory limit of 200 MiB.');
    expect(f).toContain('hint: raise the limit: gpuq submit --memory 400m');
    expect(rows(f).length).toBeLessThanOrEqual(23);
    m.ui.stdin.write('d');
    await m.settle();
    const d = m.frame();
    expect(d).toContain('diagnosis');
    expect(d).toContain('Evidence:');
    expect(d).toContain('the memory cgroup counted 1 OOM kill');
    expect(d).toContain('use smaller dtypes');
    m.ui.stdin.write('d');
    await m.settle();
    expect(m.frame()).toContain('✘ oom');
    expect(m.onExit).not.toHaveBeenCalled();
  });

  it('leaves by itself with exitOnDone', async () => {
    const m = mount({ width: 80, height: 24, exitOnDone: true });
    await busy(m, 1);
    await m.feed({ type: 'verdict', job: doneJob() });
    await vi.waitFor(() => expect(m.onExit).toHaveBeenCalledTimes(1), { timeout: 2000 });
    expect(m.onExit.mock.calls[0]?.[0]).toMatchObject({ left: 'done', job: { verdict: { class: 'oom' } } });
  });
});

describe('watch view keys', () => {
  it('q leaves with the job still running', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    m.ui.stdin.write('q');
    await m.settle();
    expect(m.onExit).toHaveBeenCalledWith({
      left: 'quit',
      job: expect.objectContaining({ state: 'running' }),
      cancelRequested: false,
    });
  });

  it('Ctrl-C leaves like q', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    m.ui.stdin.write(KEY.ctrlC);
    await m.settle();
    expect(m.onExit.mock.calls[0]?.[0]).toMatchObject({ left: 'quit' });
  });

  it('c asks first; n keeps the job, y cancels it', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    m.ui.stdin.write('c');
    await m.settle();
    expect(m.frame()).toContain('cancel job abc12345? y/n');
    m.ui.stdin.write('n');
    await m.settle();
    expect(m.frame()).not.toContain('y/n');
    expect(m.onCancel).not.toHaveBeenCalled();
    m.ui.stdin.write('c');
    await m.settle();
    m.ui.stdin.write('y');
    await m.settle();
    expect(m.onCancel).toHaveBeenCalledTimes(1);
    expect(m.frame()).toContain('cancel sent');
  });

  it('s cycles all, stdout, stderr', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 6);
    m.ui.stdin.write('s');
    await m.settle();
    expect(m.frame()).toContain('log · stdout');
    expect(m.frame()).toContain('epoch 0');
    expect(m.frame()).not.toContain('warning 2');
    m.ui.stdin.write('s');
    await m.settle();
    expect(m.frame()).toContain('log · stderr');
    expect(m.frame()).toContain('warning 5');
    expect(m.frame()).not.toContain('epoch 0');
    m.ui.stdin.write('s');
    await m.settle();
    expect(m.frame()).toContain('log · all');
  });

  it('arrows and PgUp/PgDn scroll the log; new lines keep the view still', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 60);
    expect(m.frame()).toContain('warning 59');
    m.ui.stdin.write(KEY.pageUp);
    await m.settle();
    expect(m.frame()).not.toContain('warning 59');
    expect(m.frame()).toMatch(/\d+ newer below/);
    m.ui.stdin.write(KEY.up);
    await m.settle();
    const before = m.frame().match(/(\d+) newer below/)?.[1];
    await m.feed({ type: 'log', stream: 'stdout', line: 'epoch 60', at: NOW });
    expect(m.frame()).not.toContain('epoch 60');
    expect(Number(m.frame().match(/(\d+) newer below/)?.[1])).toBe(Number(before) + 1);
    m.ui.stdin.write(KEY.pageDown);
    m.ui.stdin.write(KEY.pageDown);
    m.ui.stdin.write(KEY.pageDown);
    await m.settle();
    m.ui.stdin.write(KEY.down);
    await m.settle();
    expect(m.frame()).toContain('epoch 60');
    expect(m.frame()).toContain('following');
  });
});

it('the diagnosis text holds the verdict, evidence, hints and limits', () => {
  const text = diagnosisText(doneJob(OOM), null);
  expect(text).toContain('Verdict: oom (cgroup) · exit 137 · SIGKILL');
  expect(text).toContain('  - RSS peaked at 205 MiB of the 200 MiB limit');
  expect(text).toContain('memory 200 MiB');
  expect(text).toContain('gpuq diagnose abc12345');
  expect(diagnosisText(runningJob())).toContain('No verdict yet');
});
