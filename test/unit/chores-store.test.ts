/**
 * The state prune and rerun rely on, without processes: Ledger.forget (live file and archive,
 * never an active job) and the kept program copies (ledger/programs.ts).
 */
import { existsSync, lstatSync, mkdtempSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { LIVE_DONE_KEEP, openLedger } from '../../src/ledger/ledger.js';
import { forgetPrograms, keepProgram, keptProgramPath, readKeptProgram, sha256Of } from '../../src/ledger/programs.js';
import { runningJob } from '../helpers/tui-fixtures.js';

const temp = () => mkdtempSync(join(tmpdir(), 'gpuq-chores-'));

/** A finished job that ended `i` seconds after a fixed time. */
function doneJob(id: string, i: number): Job {
  const at = new Date(Date.parse('2026-01-01T00:00:00Z') + i * 1000).toISOString();
  const j = runningJob({ id });
  return { ...j, state: 'done', endedAt: at, createdAt: at, verdict: null };
}

describe('Ledger.forget', () => {
  it('removes finished jobs from the live file and the archive, never an active one', async () => {
    const path = join(temp(), 'ledger.json');
    const ledger = openLedger(path);
    const done = Array.from({ length: LIVE_DONE_KEEP + 2 }, (_, i) => doneJob(`d${String(i).padStart(7, '0')}`, i));
    await ledger.update((jobs) => ({ jobs: [...jobs, runningJob({ id: 'active00' }), ...done], result: undefined }));
    // the two oldest went to the archive
    const archive = join(path.replace(/\.json$/, '.archive.jsonl'));
    expect(readFileSync(archive, 'utf8').trim().split('\n')).toHaveLength(2);
    const removed = await ledger.forget(new Set(['d0000000', 'd0000150', 'active00', 'nosuchid']));
    expect(removed.sort()).toEqual(['d0000000', 'd0000150']);
    const all = await ledger.readAll();
    expect(all).toHaveLength(1 + LIVE_DONE_KEEP + 2 - 2);
    expect(all.map((j) => j.id)).toContain('active00');
    expect(all.map((j) => j.id)).toContain('d0000001');
    expect(all.map((j) => j.id)).not.toContain('d0000000');
    expect(all.map((j) => j.id)).not.toContain('d0000150');
    expect(readFileSync(archive, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(lstatSync(archive).mode & 0o777).toBe(0o600);
    expect(await ledger.forget(new Set())).toEqual([]);
  });
});

describe('kept programs', () => {
  it('keeps one 0600 copy per content in a 0700 folder, reads it back checked, forgets it', () => {
    const state = temp();
    const a = keepProgram(state, Buffer.from('print(1)\n'));
    const again = keepProgram(state, Buffer.from('print(1)\n'));
    const b = keepProgram(state, Buffer.from('print(2)\n'));
    expect(again).toEqual(a);
    expect(a.sha256).toBe(sha256Of(Buffer.from('print(1)\n')));
    expect(a.path).toBe(join(state, 'programs', a.sha256));
    expect(b.sha256).not.toBe(a.sha256);
    expect(lstatSync(a.path).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(state, 'programs')).mode & 0o777).toBe(0o700);
    expect(readKeptProgram(state, a.sha256, 1024)?.toString()).toBe('print(1)\n');
    expect(forgetPrograms(state, [a.sha256, 'not-a-hash', a.sha256])).toBe(9);
    expect(existsSync(a.path)).toBe(false);
    expect(readKeptProgram(state, a.sha256, 1024)).toBeNull();
    expect(existsSync(b.path)).toBe(true);
  });

  it('refreshes the time of a reused copy (prune leaves recent copies to submits under way)', () => {
    const state = temp();
    const a = keepProgram(state, Buffer.from('x = 1\n'));
    utimesSync(a.path, new Date(0), new Date(0));
    keepProgram(state, Buffer.from('x = 1\n'));
    expect(Date.now() - lstatSync(a.path).mtimeMs).toBeLessThan(60_000);
  });

  it('refuses a copy that was altered, is a link, or is too large, and a hash that is not one', () => {
    const state = temp();
    const a = keepProgram(state, Buffer.from('print("kept")\n'));
    writeFileSync(a.path, 'print("changed")\n');
    expect(() => readKeptProgram(state, a.sha256, 1024)).toThrow(/no longer matches what was submitted/);
    expect(() => readKeptProgram(state, a.sha256, 4)).toThrow(/larger than/);
    const b = keepProgram(state, Buffer.from('print("b")\n'));
    const elsewhere = join(temp(), 'target');
    writeFileSync(elsewhere, 'print("b")\n');
    const linkState = temp();
    keepProgram(linkState, Buffer.from('y\n')); // makes the folder
    symlinkSync(elsewhere, keptProgramPath(linkState, b.sha256));
    expect(() => readKeptProgram(linkState, b.sha256, 1024)).toThrow(/cannot be opened/);
    expect(() => keptProgramPath(state, '../x')).toThrow(/not a SHA-256/);
  });

  it("replaces whatever has a copy's name but is not it, and refuses a programs folder that is a link", () => {
    const state = temp();
    const content = Buffer.from('print("ok")\n');
    keepProgram(state, Buffer.from('z\n'));
    const target = join(temp(), 'victim');
    writeFileSync(target, 'victim');
    symlinkSync(target, keptProgramPath(state, sha256Of(content)));
    const k = keepProgram(state, content);
    expect(lstatSync(k.path).isFile()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('victim');
    const linked = temp();
    symlinkSync(temp(), join(linked, 'programs'));
    expect(() => keepProgram(linked, content)).toThrow(/is not a folder/);
  });
});
