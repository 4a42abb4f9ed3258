/**
 * The files the ledger writes (issue 10): the ledger holds `--env` values, so every file it creates
 * (the live file, its .bak, the archive and the temp files they go through) is 0600 from the
 * moment it exists, whatever the umask; links planted under those names never make gpuq write
 * their targets. Every open that creates a file is recorded (node:fs wrapped) with the file's
 * mode right after the open, so a temp file that is briefly readable cannot pass unseen.
 */
import * as realFs from 'node:fs';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '../../src/core/errors.js';
import type { Job } from '../../src/core/types.js';
import { LIVE_DONE_KEEP, openLedger } from '../../src/ledger/ledger.js';
import { doneJob, runningJob } from '../helpers/tui-fixtures.js';

const created: { path: string; mode: number }[] = [];

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const openSync = (path: realFs.PathLike, flags?: realFs.OpenMode, mode?: realFs.Mode | null): number => {
    const fd = fs.openSync(path, flags ?? 'r', mode);
    if (typeof flags === 'number' && (flags & fs.constants.O_CREAT) !== 0) {
      created.push({ path: String(path), mode: fs.fstatSync(fd).mode & 0o777 });
    }
    return fd;
  };
  return { ...fs, openSync, default: { ...fs, openSync } };
});

let savedUmask = 0;
beforeEach(() => {
  created.length = 0;
  savedUmask = process.umask(0o022);
});
afterEach(() => {
  process.umask(savedUmask);
});

const running = (id: string): Job => runningJob({ id });
const done = (i: number): Job => ({ ...doneJob(), id: `d${String(i).padStart(7, '0')}` });

function home(): string {
  return mkdtempSync(join(tmpdir(), 'gpuq-ledger-files-'));
}

/** Records three jobs, then enough finished ones that some move to the archive. */
async function fill(path: string): Promise<void> {
  const ledger = openLedger(path);
  for (const id of ['aaaaaaaa', 'bbbbbbbb', 'cccccccc']) {
    await ledger.update((jobs) => ({ jobs: [...jobs, running(id)], result: undefined }));
  }
  await ledger.update((jobs) => ({
    jobs: [...jobs, ...Array.from({ length: LIVE_DONE_KEEP + 5 }, (_, i) => done(i))],
    result: undefined,
  }));
}

describe('ledger files', () => {
  it.each([0o022, 0o000, 0o277])(
    'under umask %o, every file it creates is private from its creation, and 0600 once written',
    async (umask) => {
      process.umask(umask);
      const dir = home();
      const path = join(dir, 'ledger.json');
      await fill(path);
      // Each write goes through a temp file of its own: `.NAME.PID.RANDOM.tmp`, never reused.
      const paths = created.map((c) => c.path);
      const temps = paths.filter((p) => p.endsWith('.tmp'));
      expect(new Set(temps).size).toBe(temps.length);
      expect(temps.length).toBe(4 + 3); // four writes of the ledger, three of its .bak (none before the first)
      const unique = new RegExp(`\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`);
      expect(temps.filter((p) => !unique.test(p))).toEqual([]);
      expect(new Set(paths.map((p) => p.replace(unique, '.tmp')))).toEqual(
        new Set([join(dir, '.ledger.json.tmp'), join(dir, '.ledger.json.bak.tmp'), join(dir, 'ledger.archive.jsonl')]),
      );
      // the umask may only take bits away from 0600 at the open (the mode is set right after)
      expect(created.filter((c) => (c.mode & 0o077) !== 0 || c.mode !== (0o600 & ~umask))).toEqual([]);
      // nothing left behind but the three files, each 0600
      const files = readdirSync(dir).filter((n) => !n.endsWith('.lock'));
      expect(files.sort()).toEqual(['ledger.archive.jsonl', 'ledger.json', 'ledger.json.bak']);
      for (const f of files) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);
      expect(statSync(dir).mode & 0o077).toBe(0);
      expect((await openLedger(path).readAll()).length).toBe(3 + LIVE_DONE_KEEP + 5);
    },
  );

  it('makes an existing archive that others could read private when it appends to it', async () => {
    const dir = home();
    const path = join(dir, 'ledger.json');
    writeFileSync(join(dir, 'ledger.archive.jsonl'), '', { mode: 0o644 });
    await fill(path);
    expect(statSync(join(dir, 'ledger.archive.jsonl')).mode & 0o777).toBe(0o600);
  });

  it(
    'never writes through links planted at the temp files or the .bak: ' +
      'the .bak is replaced, the targets untouched; temp names are not guessable',
    async () => {
      const dir = home();
      const path = join(dir, 'ledger.json');
      const victims = ['victim-tmp', 'victim-bak', 'victim-bak-tmp'].map((n) => join(dir, n));
      for (const v of victims) writeFileSync(v, 'precious\n', { mode: 0o644 });
      symlinkSync(victims[0] as string, join(dir, '.ledger.json.tmp'));
      symlinkSync(victims[1] as string, join(dir, 'ledger.json.bak'));
      symlinkSync(victims[2] as string, join(dir, '.ledger.json.bak.tmp'));
      // a dangling link too: O_CREAT through it would create its target
      symlinkSync(join(dir, 'created-through-link'), join(dir, '.ledger.archive.jsonl.tmp'));
      await fill(path);
      expect(readdirSync(dir)).not.toContain('created-through-link');
      for (const v of victims) {
        expect(readFileSync(v, 'utf8'), v).toBe('precious\n');
        expect(statSync(v).mode & 0o777).toBe(0o644);
      }
      expect(lstatSync(join(dir, 'ledger.json.bak')).isFile()).toBe(true);
      expect(lstatSync(join(dir, 'ledger.json')).isFile()).toBe(true);
      // The links at the old fixed temp names stay as planted (never opened); no temp file is left.
      expect(lstatSync(join(dir, '.ledger.json.tmp')).isSymbolicLink()).toBe(true);
      expect(lstatSync(join(dir, '.ledger.json.bak.tmp')).isSymbolicLink()).toBe(true);
      expect(readdirSync(dir).filter((n) => /\.\d+\.[0-9a-f]{12}\.tmp$/.test(n))).toEqual([]);
      expect((await openLedger(path).readLive()).map((j) => j.id).slice(0, 3)).toEqual([
        'aaaaaaaa',
        'bbbbbbbb',
        'cccccccc',
      ]);
    },
  );

  it('refuses to append to an archive that is a link: exit 5 naming it, nothing written', async () => {
    const dir = home();
    const path = join(dir, 'ledger.json');
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, join(dir, 'ledger.archive.jsonl'));
    const ledger = openLedger(path);
    await ledger.update((jobs) => ({ jobs: [...jobs, running('aaaaaaaa')], result: undefined }));
    const before = readFileSync(path, 'utf8');
    const err = await ledger
      .update((jobs) => ({
        jobs: [...jobs, ...Array.from({ length: LIVE_DONE_KEEP + 1 }, (_, i) => done(i))],
        result: undefined,
      }))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(5);
    expect((err as UserError).message).toContain(join(dir, 'ledger.archive.jsonl'));
    expect((err as UserError).message).toContain('symbolic link');
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(readFileSync(path, 'utf8')).toBe(before);
  });

  it('a FIFO planted as the archive is refused (exit 5) rather than blocking', async () => {
    const dir = home();
    const path = join(dir, 'ledger.json');
    realFs.mkdirSync(dir, { recursive: true });
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(dir, 'ledger.archive.jsonl')]);
    const err = await openLedger(path)
      .update((jobs) => ({
        jobs: [...jobs, ...Array.from({ length: LIVE_DONE_KEEP + 1 }, (_, i) => done(i))],
        result: undefined,
      }))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect((err as UserError).exitCode).toBe(5);
    expect((err as UserError).message).toContain(join(dir, 'ledger.archive.jsonl'));
  });
});
