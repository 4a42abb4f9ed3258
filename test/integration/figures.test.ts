/**
 * Figures that agree (issue 11, items 5-8), end to end: real programs that end in several ways
 * (success, failure, timeout, memory kill, the process limit hit by threads) under the real
 * supervisor, then every page that prints a job's duration and peaks — `list --json`, `show
 * --json`, `diagnose --json`, `watch --json`, `wait --json`, and the human `list` and `watch
 * --plain` — must print the same ones. Also: startedAt/endedAt are the supervisor's times from
 * status.json, a 50 MiB file written between two samples counts in the folder's peak, and the
 * threads a job starts count against --pids.
 *
 * The jobs run concurrently in one home (cleaned up once, after all of them), so the file takes
 * about as long as its slowest job: the timeout, 2 s plus a 1 s grace.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durationText } from '../../src/core/present.js';
import type { Job } from '../../src/core/types.js';
import { gpuq, gpuqJson, type Home, makeHome, writeProgram } from '../helpers/cli.js';

const MiB = 1024 * 1024;

interface Peak {
  key: string;
  value: number;
  limit: number | null;
  ratio: number | null;
  text: string;
  source: string;
}
interface Figures {
  durationMs: number | null;
  peaks: Peak[] | null;
}
type JobJson = Job & Figures;

interface Case {
  name: string;
  program: string;
  args: string[];
  class: string;
  cause?: string;
}

const CASES: Case[] = [
  {
    // 50 MiB written and the program gone well before the folder's next measurement (5 s).
    name: 'success',
    program: "with open('big.bin', 'wb') as f:\n    f.write(b'x' * (50 * 1024 * 1024))\nprint('done')\n",
    args: [],
    class: 'succeeded',
  },
  {
    name: 'failure',
    program: 'import sys\nprint("bad input", file=sys.stderr)\nsys.exit(3)\n',
    args: [],
    class: 'failed',
  },
  {
    // Ignores SIGTERM, so it runs through the grace period: its wall time passes the limit.
    name: 'timeout',
    program: 'import signal, threading\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nthreading.Event().wait()\n',
    args: ['--timeout', '2s', '--grace', '1s'],
    class: 'timeout',
  },
  {
    name: 'memory kill',
    program: 'x = []\nwhile True:\n    x.append(bytearray(8 * 1024 * 1024))\n',
    args: ['--memory', '100m'],
    class: 'oom',
  },
  {
    // One process, many threads: the threads alone reach --pids.
    name: 'pids',
    program:
      'import threading\nev = threading.Event()\nfor i in range(64):\n' +
      '    threading.Thread(target=ev.wait, daemon=True).start()\n',
    args: ['--pids', '8'],
    class: 'limit',
    cause: 'pids',
  },
];

interface Ran {
  c: Case;
  job: JobJson;
}

let home: Home;
let ran: Ran[] = [];

beforeAll(async () => {
  home = await makeHome(undefined, {}, { autoCleanup: false });
  ran = await Promise.all(
    CASES.map(async (c) => {
      const prog = await writeProgram(`${c.name.replace(/ /g, '_')}.py`, c.program);
      const r = await gpuq(home, ['submit', prog, ...c.args, '--wait', '--json']);
      if (r.stdout.trim() === '') throw new Error(`submit of ${c.name} printed nothing: ${r.stderr}`);
      return { c, job: JSON.parse(r.stdout) as JobJson };
    }),
  );
}, 60_000);

afterAll(async () => {
  await home?.cleanup();
});

/** The job's status.json, as its supervisor wrote it. */
function statusOf(job: Job): { startedAtMs: number; endedAtMs: number | null; pidsPeak?: number | null } {
  return JSON.parse(readFileSync(join(job.remote?.dir as string, 'status.json'), 'utf8'));
}

const peak = (f: Figures, key: string): Peak | undefined => f.peaks?.find((p) => p.key === key);

describe('figures that agree', () => {
  it('each job ended the way it was meant to', () => {
    for (const { c, job } of ran) {
      expect(job.verdict?.class, `${c.name}: ${JSON.stringify(job.verdict)}`).toBe(c.class);
      if (c.cause) expect(job.verdict?.cause, c.name).toBe(c.cause);
    }
  });

  it("records the supervisor's start and end from status.json, the start never after the end", () => {
    for (const { c, job } of ran) {
      const st = statusOf(job);
      expect(job.startedAt, c.name).toBe(new Date(st.startedAtMs).toISOString());
      expect(job.endedAt, c.name).toBe(new Date(st.endedAtMs as number).toISOString());
      expect(Date.parse(job.startedAt as string)).toBeLessThanOrEqual(Date.parse(job.endedAt as string));
      expect(job.durationMs, c.name).toBe((st.endedAtMs as number) - st.startedAtMs);
      // when gpuq noticed stays in the history, after the supervisor's own times
      const noticed = job.history.find((h) => h.state === 'done')?.at as string;
      expect(Date.parse(noticed)).toBeGreaterThanOrEqual(Date.parse(job.endedAt as string) - 1000);
    }
  });

  it('list, show, diagnose, watch and wait --json report the same duration and the same peaks', async () => {
    const [list, table, waited] = await Promise.all([
      gpuqJson<JobJson[]>(home, ['list']),
      gpuq(home, ['list']),
      gpuqJson<JobJson[]>(home, ['wait', ...ran.map((r) => r.job.id)]),
    ]);
    await Promise.all(
      ran.map(async ({ c, job }) => {
        // The plain watch of two of the jobs is enough for its words (each call is a process).
        const wantPlain = c.name === 'timeout' || c.name === 'pids';
        const [show, diagnose, watch, plain] = await Promise.all([
          gpuqJson<JobJson>(home, ['show', job.id]),
          gpuqJson<Figures>(home, ['diagnose', job.id]),
          gpuq(home, ['watch', job.id, '--json']),
          wantPlain ? gpuq(home, ['watch', job.id, '--plain']) : null,
        ]);
        const verdict = watch.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Figures & { type: string })
          .find((r) => r.type === 'verdict');
        const pages: Record<string, Figures | undefined> = {
          'submit --wait': job,
          list: list.find((j) => j.id === job.id),
          show,
          diagnose,
          watch: verdict,
          wait: waited.find((j) => j.id === job.id),
        };
        const where = `${c.name}: ${JSON.stringify(pages, ['durationMs', 'peaks', 'key', 'value'])}`;
        expect(job.durationMs, where).toBeGreaterThan(0);
        expect(job.peaks?.length, where).toBeGreaterThan(0);
        for (const [page, f] of Object.entries(pages)) {
          expect(f?.durationMs, `${page} | ${where}`).toBe(job.durationMs);
          expect(f?.peaks, `${page} | ${where}`).toEqual(job.peaks);
        }
        // The wall-time peak is that same duration.
        expect((peak(job, 'wall_time')?.value ?? 0) * 1000).toBeCloseTo(job.durationMs as number, 6);
        // The human pages print it in the same words.
        const text = durationText(job.durationMs);
        expect(table.stdout.split('\n').find((l) => l.startsWith(job.id))).toMatch(new RegExp(`\\s${text}\\s{2}`));
        if (plain) {
          expect(plain.stdout).toContain(`, ran ${text}: `);
          for (const p of job.peaks ?? []) expect(plain.stdout).toContain(`peak: ${p.text}`);
        }
      }),
    );
  }, 60_000);

  it('one memory peak per job, the cgroup’s where there is one, and every ratio over 100% says why', () => {
    for (const { c, job } of ran) {
      const memory = job.peaks?.filter((p) => p.key === 'memory') ?? [];
      expect(memory, c.name).toHaveLength(1);
      for (const p of job.peaks ?? [])
        if (p.ratio !== null && p.ratio > 1.005) expect(p.text, c.name).toMatch(/\(\d+%: \S/);
    }
    const oom = ran.find((r) => r.c.name === 'memory kill')?.job as JobJson;
    const m = peak(oom, 'memory');
    expect(m?.limit).toBe(100 * MiB);
    expect(m?.value).toBeGreaterThan(50 * MiB);
    // The verdict's evidence quotes the same memory peak as the pages.
    expect(oom.verdict?.evidence).toContain(m?.text);
  });

  it('a timeout that ran through its grace period says its wall time passed the limit because of it', () => {
    const t = ran.find((r) => r.c.name === 'timeout')?.job as JobJson;
    const wall = peak(t, 'wall_time');
    expect(wall?.limit).toBe(2);
    expect(wall?.ratio).toBeGreaterThan(1.1);
    expect(wall?.text).toMatch(
      /of the 2s wall-clock limit \(\d+%: SIGTERM came at the limit, then it had up to the 1s grace/,
    );
  });

  it('a 50 MiB file written between two samples counts in the job folder’s peak', () => {
    const s = ran.find((r) => r.c.name === 'success')?.job as JobJson;
    expect(peak(s, 'folder')?.value).toBeGreaterThanOrEqual(50 * MiB);
  });

  it('threads count against --pids: processes and threads together peak at the limit', () => {
    const p = ran.find((r) => r.c.name === 'pids')?.job as JobJson;
    const tasks = peak(p, 'tasks');
    expect(tasks?.limit).toBe(8);
    expect(tasks?.value).toBe(8);
    expect(tasks?.text).toMatch(/^processes and threads peaked at 8 of the 8 limit \(100%\)/);
    // One process: a limit of 8 "processes" was reached by its threads.
    expect(peak(p, 'procs')?.value ?? 1).toBeLessThan(8);
    expect(peak(p, 'procs')?.limit ?? null).toBeNull();
    const st = statusOf(p);
    if (st.pidsPeak != null) expect(tasks?.source).toBe('cgroup');
    // The verdict names the limit, and its evidence the same peak as every page.
    expect(p.verdict?.evidence).toContain(tasks?.text);
  });
});
