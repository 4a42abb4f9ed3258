/**
 * End to end on the embedded local node (the real binary, real supervisors, real processes; each
 * test its own GPUQ_HOME), split from cli-local.test.ts so vitest runs the parts in parallel:
 * the ledger under concurrent submits, locks and damage.
 */
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { gpuq, gpuqJson, type Home, makeHome, writeProgram } from '../helpers/cli.js';

/** A GPUQ_HOME removed, with what is left of its jobs, when the test ends. */
function home(config?: unknown): Promise<Home> {
  return makeHome(config);
}

const SUBMITS = 8;

describe('the ledger', () => {
  // 8, not 30: each submit is a node process and a supervisor (30 cost 48 s of a 2-core machine,
  // 12 about 20 CPU-s), and 8 started at once on 2 cores still race for the lock, many of them
  // within the same few milliseconds.
  it(`${SUBMITS} concurrent submits leave exactly ${SUBMITS} distinct jobs`, async () => {
    const h = await home();
    const prog = await writeProgram('quick.py', 'print("hi")\n');
    const runs = await Promise.all(Array.from({ length: SUBMITS }, () => gpuq(h, ['submit', prog, '-q'])));
    for (const r of runs) expect(r.stderr, r.stderr).not.toMatch(/error/i);
    expect(
      runs.map((r) => r.code),
      runs.map((r) => r.stderr).join(''),
    ).toEqual(Array(SUBMITS).fill(0));
    const ids = runs.map((r) => r.stdout.trim());
    expect(new Set(ids).size).toBe(SUBMITS);
    const list = await gpuqJson<Job[]>(h, ['list', '--all']);
    expect(list.map((j) => j.id).sort()).toEqual([...ids].sort());
    expect((await gpuq(h, ['wait', ...ids])).code).toBe(0);
  }, 120_000);

  it('a ledger that is not a readable file exits 5, not with a stack trace', async () => {
    const h = await home();
    mkdirSync(join(h.dir, 'ledger.json'));
    const r = await gpuq(h, ['list']);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(join(h.dir, 'ledger.json'));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a lock left by a dead gpuq is taken over', async () => {
    const h = await home();
    const prog = await writeProgram('ok.py', 'print(1)\n');
    const lock = join(h.dir, 'ledger.json.lock');
    mkdirSync(lock);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    // no --wait: the lock is taken over to record the job, and the test needs no more of it
    const r = await gpuq(h, ['submit', prog, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[0-9a-z]{8}$/);
    expect(existsSync(lock)).toBe(false);
  });

  it('a corrupt ledger is never overwritten: exit 5, naming the file and the last good copy', async () => {
    const h = await home();
    const prog = await writeProgram('ok.py', 'print(1)\n');
    const first = await gpuq(h, ['submit', prog, '--wait', '-q']);
    expect(first.code).toBe(0);
    // the second submit's records make the copy beside the ledger (no need to wait for it)
    expect((await gpuq(h, ['submit', prog, '-q'])).code).toBe(0);
    const path = join(h.dir, 'ledger.json');
    const good = readFileSync(path, 'utf8');
    const torn = good.slice(0, Math.floor(good.length / 2));
    writeFileSync(path, torn);
    for (const args of [['list'], ['submit', prog]]) {
      const r = await gpuq(h, args);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(path);
      expect(r.stderr).toContain('ledger.json.bak');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(readFileSync(path, 'utf8')).toBe(torn);
    // the copy beside it is a good ledger holding the first job, finished
    const bak = JSON.parse(readFileSync(`${path}.bak`, 'utf8')) as { jobs: Job[] };
    const firstJob = bak.jobs.find((j) => j.id === first.stdout.trim());
    expect(firstJob, JSON.stringify(bak)).toBeDefined();
    expect(firstJob?.verdict?.class).toBe('succeeded');
  });

  it(
    'a hand-edited job missing a field is refused by name, ' +
      'never crashes or is overwritten; so is a damaged archive line',
    async () => {
      const h = await home();
      const prog = await writeProgram('ok.py', 'print(1)\n');
      const id = (await gpuq(h, ['submit', prog, '--wait', '-q'])).stdout.trim();
      const path = join(h.dir, 'ledger.json');
      const data = JSON.parse(readFileSync(path, 'utf8')) as { jobs: Record<string, unknown>[] };
      const good = { ...data.jobs[0]! };
      // an archived job, as gpuq writes one, is listed by --all
      const archive = join(h.dir, 'ledger.archive.jsonl');
      writeFileSync(archive, `${JSON.stringify({ ...good, id: 'arch0001' })}\n`);
      expect((await gpuq(h, ['list', '--all'])).stdout).toContain('arch0001');

      delete data.jobs[0]!.limits;
      const edited = JSON.stringify(data);
      writeFileSync(path, edited);
      for (const args of [['list'], ['list', '--json'], ['show', id], ['submit', prog]]) {
        const r = await gpuq(h, args);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(5);
        expect(r.stderr).toContain(`job ${id}: field "limits" is missing`);
        expect(r.stderr).toContain('ledger.json.bak');
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
      expect(readFileSync(path, 'utf8')).toBe(edited);

      writeFileSync(path, JSON.stringify({ ...data, jobs: [good] }));
      writeFileSync(
        archive,
        JSON.stringify({ ...good, id: 'arch0001' }) +
          '\n' +
          JSON.stringify({ ...good, id: 'arch0002', state: 'exploded' }) +
          '\n',
      );
      const r = await gpuq(h, ['list', '--all']);
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain(
        `${archive} is damaged at line 2 (job arch0002: field "state" has a value of the wrong kind ("exploded"))`,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /);
    },
  );
});
