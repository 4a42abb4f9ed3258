import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { openLedger } from '../../src/ledger/ledger.js';
import { runningJob } from '../helpers/tui-fixtures.js';

const job = (id: string): Job => runningJob({ id });

describe('ledger', () => {
  it('never writes over a version written after it read (a lock taken over from a stopped holder)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gpuq-ledger-')), 'ledger.json');
    const ledger = openLedger(path);
    await ledger.update((jobs) => ({ jobs: [...jobs, job('aaaaaaaa')], result: undefined }));
    let calls = 0;
    await ledger.update((jobs) => {
      calls++;
      if (calls === 1) {
        // another process, which took the lock over meanwhile, replaces the file
        const other = { version: 1, jobs: [...jobs, job('bbbbbbbb')] };
        writeFileSync(`${path}.other`, JSON.stringify(other));
        renameSync(`${path}.other`, path);
      }
      return { jobs: [...jobs, job('cccccccc')], result: undefined };
    });
    expect(calls).toBe(2);
    const ids = (JSON.parse(readFileSync(path, 'utf8')) as { jobs: Job[] }).jobs.map((j) => j.id);
    expect(ids).toEqual(['aaaaaaaa', 'bbbbbbbb', 'cccccccc']);
  });

  it('updateJob rewrites one job under the lock, sees the others, and refuses an unknown id', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gpuq-ledger-')), 'ledger.json');
    const ledger = openLedger(path);
    await ledger.update((jobs) => ({ jobs: [...jobs, job('aaaaaaaa'), job('bbbbbbbb')], result: undefined }));
    const seen: string[] = [];
    const next = await ledger.updateJob('bbbbbbbb', (j, all) => {
      seen.push(...all.map((x) => x.id));
      return { ...j, gpus: [3] };
    });
    expect(seen).toEqual(['aaaaaaaa', 'bbbbbbbb']);
    expect(next.gpus).toEqual([3]);
    const stored = await ledger.readLive();
    expect(stored.map((j) => [j.id, j.gpus])).toEqual([
      ['aaaaaaaa', job('aaaaaaaa').gpus],
      ['bbbbbbbb', [3]],
    ]);
    await expect(ledger.updateJob('zzzzzzzz', (j) => j)).rejects.toThrow(/zzzzzzzz vanished/);
  });

  it('runs many updates of one process one after another, none of them waiting out lockWaitMs', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gpuq-ledger-')), 'ledger.json');
    // 100 updates at once take longer than lockWaitMs together (as `gpuq wait` of 100 jobs did)
    const ledger = openLedger(path, { lockWaitMs: 300 });
    const ids = Array.from({ length: 100 }, (_, i) => `j${String(i).padStart(7, '0')}`);
    await Promise.all(ids.map((id) => ledger.update((jobs) => ({ jobs: [...jobs, job(id)], result: undefined }))));
    expect((await ledger.readLive()).map((j) => j.id).sort()).toEqual(ids);
  });

  it('waits for a lock another process holds for lockWaitMs, then refuses with exit 5 and changes nothing', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gpuq-ledger-')), 'ledger.json');
    const ledger = openLedger(path, { lockWaitMs: 600 });
    await ledger.update((jobs) => ({ jobs: [...jobs, job('aaaaaaaa')], result: undefined }));
    const release = await lockfile.lock(path, { realpath: false, stale: 5000, update: 1000 });
    try {
      const started = Date.now();
      const err = await ledger
        .update((jobs) => ({ jobs: [...jobs, job('bbbbbbbb')], result: undefined }))
        .catch((e: unknown) => e);
      const waited = Date.now() - started;
      expect((err as { exitCode?: number }).exitCode, String(err)).toBe(5);
      expect(String(err)).toMatch(/locked by another gpuq process/);
      expect(waited).toBeGreaterThanOrEqual(600);
      expect(waited).toBeLessThan(10_000);
    } finally {
      await release();
    }
    expect((await ledger.readLive()).map((j) => j.id)).toEqual(['aaaaaaaa']);
  });
});
