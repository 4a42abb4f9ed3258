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
  const feed = (...events: WatchEvent[]): void => {
    for (const e of events) sink?.event(e);
  };
  const frame = (): string => ui.lastFrame() ?? '';
  /**
   * Waits for the frame the test expects (the check passes), however loaded the machine. A key
   * written right after it must act on that frame's state, as a fast typist's would: the view's
   * key handler reads the state last drawn (useWatchKeys), not the one of its last subscription.
   */
  const until = async (check: (frame: string) => void): Promise<void> => {
    await eventually(() => check(frame()));
  };
  return { ui, feed, frame, until, onExit, onCancel };
}

/**
 * Waits until `check` passes: React has committed and ink drawn what the test expects. An event
 * (the expected frame), not a settling time; the deadline is only a bound for a broken view.
 */
function eventually(check: () => void): Promise<void> {
  return vi.waitFor(check, { timeout: 10_000, interval: 5 });
}

/** A running job with ten samples, stdout and stderr lines. */
async function busy(m: ReturnType<typeof mount>, lines = 6): Promise<void> {
  m.feed({ type: 'job', job: runningJob() }, { type: 'connection', status: 'connected' });
  await m.until((f) => expect(f).toContain('● connected'));
  m.feed(...Array.from({ length: 10 }, (_, i): WatchEvent => ({ type: 'sample', sample: sample(i) })));
  await m.until((f) => expect(f).toContain('peak 110 MiB'));
  m.feed(
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
  const last = lines - 1;
  await m.until((f) => expect(f).toContain(`${last % 3 === 2 ? 'warning' : 'epoch'} ${last}`));
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
    // processes and threads together, what --pids counts
    expect(f).toMatch(/tasks\s+5 \/ 64 · 3 procs/);
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
    await m.until((f) => {
      const wide = rows(f);
      expect(wide.length).toBe(29);
      expect(Math.max(...wide.map((r) => r.length))).toBeGreaterThan(80);
    });
    Object.defineProperty(out, 'columns', { value: 80, configurable: true });
    Object.defineProperty(out, 'rows', { value: 24, configurable: true });
    out.emit('resize');
    await m.until((f) => {
      const narrow = rows(f);
      expect(narrow.length).toBe(23);
      for (const r of narrow) expect(r.length).toBeLessThanOrEqual(80);
    });
    expect(m.frame()).toContain('epoch 39');
  });

  it('says the job is ending once its processes are gone, keeping their last figures', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    m.feed({ type: 'sample', sample: sample(10, { procs: 0, rssBytes: 0, cpuPct: 0 }) });
    await m.until((f) => expect(f).toContain('● ending · collecting the verdict'));
    expect(m.frame()).toMatch(/RSS\s+110 MiB \/ 200 MiB/);
  });

  it('says when it is reconnecting and in how many seconds', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    m.feed({ type: 'connection', status: 'reconnecting', retryInS: 4, reason: 'connection reset', at: NOW });
    await m.until((f) => expect(f).toContain('reconnecting in 4 s (connection reset)'));
    m.feed({ type: 'connection', status: 'connected' });
    await m.until((f) => expect(f).toContain('● connected'));
  });
});

describe('watch view verdict', () => {
  it('shows the banner with class, exit, summary and first hint, and d opens the diagnosis', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m);
    m.feed({ type: 'verdict', job: doneJob() });
    await m.until((f) => expect(f).toContain('done · oom'));
    const f = m.frame();
    expect(f).toContain('done · oom');
    expect(f).toContain('✘ oom (cgroup)  exit 137 · SIGKILL');
    expect(f).toContain('Killed for memory at the memory limit of 200 MiB.');
    expect(f).toContain('hint: raise the limit: gpuq submit --memory 400m');
    expect(rows(f).length).toBeLessThanOrEqual(23);
    m.ui.stdin.write('d');
    await m.until((f) => expect(f).toContain('Evidence:'));
    const d = m.frame();
    expect(d).toContain('diagnosis');
    expect(d).toContain('Evidence:');
    expect(d).toContain('the memory cgroup counted 1 OOM kill');
    expect(d).toContain('use smaller dtypes');
    m.ui.stdin.write('d');
    await m.until((f) => {
      expect(f).not.toContain('Evidence:');
      expect(f).toContain('✘ oom');
    });
    expect(m.onExit).not.toHaveBeenCalled();
  });

  it('leaves by itself with exitOnDone', async () => {
    const m = mount({ width: 80, height: 24, exitOnDone: true });
    await busy(m, 1);
    m.feed({ type: 'verdict', job: doneJob() });
    await eventually(() => expect(m.onExit).toHaveBeenCalledTimes(1));
    expect(m.onExit.mock.calls[0]?.[0]).toMatchObject({ left: 'done', job: { verdict: { class: 'oom' } } });
  });
});

describe('watch view keys', () => {
  it('q leaves with the job still running', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    m.ui.stdin.write('q');
    await eventually(() =>
      expect(m.onExit).toHaveBeenCalledWith({
        left: 'quit',
        job: expect.objectContaining({ state: 'running' }),
        cancelRequested: false,
      }),
    );
  });

  it('Ctrl-C leaves like q', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    m.ui.stdin.write(KEY.ctrlC);
    await eventually(() => expect(m.onExit).toHaveBeenCalled());
    expect(m.onExit.mock.calls[0]?.[0]).toMatchObject({ left: 'quit' });
  });

  it('c asks first; n keeps the job, y cancels it', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 1);
    m.ui.stdin.write('c');
    await m.until((f) => expect(f).toContain('cancel job abc12345? y/n'));
    m.ui.stdin.write('n');
    await m.until((f) => expect(f).not.toContain('y/n'));
    expect(m.onCancel).not.toHaveBeenCalled();
    m.ui.stdin.write('c');
    await m.until((f) => expect(f).toContain('y/n'));
    m.ui.stdin.write('y');
    await m.until((f) => expect(f).toContain('cancel sent'));
    expect(m.onCancel).toHaveBeenCalledTimes(1);
  });

  it('s cycles all, stdout, stderr', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 6);
    m.ui.stdin.write('s');
    await m.until((f) => expect(f).toContain('log · stdout'));
    expect(m.frame()).toContain('epoch 0');
    expect(m.frame()).not.toContain('warning 2');
    m.ui.stdin.write('s');
    await m.until((f) => expect(f).toContain('log · stderr'));
    expect(m.frame()).toContain('warning 5');
    expect(m.frame()).not.toContain('epoch 0');
    m.ui.stdin.write('s');
    await m.until((f) => expect(f).toContain('log · all'));
  });

  it('arrows and PgUp/PgDn scroll the log; new lines keep the view still', async () => {
    const m = mount({ width: 80, height: 24 });
    await busy(m, 60);
    expect(m.frame()).toContain('warning 59');
    const newerBelow = (f: string): string | undefined => f.match(/(\d+) newer below/)?.[1];
    m.ui.stdin.write(KEY.pageUp);
    await m.until((f) => {
      expect(f).not.toContain('warning 59');
      expect(f).toMatch(/\d+ newer below/);
    });
    const paged = newerBelow(m.frame());
    m.ui.stdin.write(KEY.up);
    await m.until((f) => expect(newerBelow(f)).not.toBe(paged));
    const before = newerBelow(m.frame());
    m.feed({ type: 'log', stream: 'stdout', line: 'epoch 60', at: NOW });
    await m.until((f) => expect(Number(newerBelow(f))).toBe(Number(before) + 1));
    expect(m.frame()).not.toContain('epoch 60');
    const scrolled = m.frame();
    m.ui.stdin.write(KEY.pageDown);
    m.ui.stdin.write(KEY.pageDown);
    m.ui.stdin.write(KEY.pageDown);
    await m.until((f) => expect(f).not.toBe(scrolled));
    m.ui.stdin.write(KEY.down);
    await m.until((f) => {
      expect(f).toContain('epoch 60');
      expect(f).toContain('following');
    });
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
