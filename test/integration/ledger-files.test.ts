/**
 * The ledger's files through the real CLI (issue 10): the ledger holds `--env` values, so under a
 * permissive umask (022) and in a GPUQ_HOME others may enter (0755), nothing gpuq writes lets
 * another user read a secret; and a full disk while writing the ledger is exit 5 naming the
 * file, with the ledger unchanged and no temp file left (a real 4 MiB tmpfs, as root).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuq, type Home, makeHome, writeProgram } from '../helpers/cli.js';

const SECRET = `s3cr3t-${process.pid}-value`;
const homes: Home[] = [];
let savedUmask = 0;
beforeAll(() => {
  savedUmask = process.umask(0o022); // gpuq inherits it
});
afterAll(async () => {
  process.umask(savedUmask);
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});

/** Every path under `root` (not root itself), with its lstat. */
function walk(root: string): { path: string; mode: number; dir: boolean }[] {
  const out: { path: string; mode: number; dir: boolean }[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = lstatSync(path);
      out.push({ path, mode: st.mode & 0o777, dir: st.isDirectory() });
      if (st.isDirectory()) stack.push(path);
    }
  }
  return out;
}

/** Whether another user could read `path`: it and every folder on the way from `root` let them. */
function othersCanRead(root: string, path: string): boolean {
  if ((lstatSync(path).mode & 0o044) === 0) return false;
  let dir = root;
  for (const part of relative(root, path).split('/').slice(0, -1)) {
    dir = join(dir, part);
    if ((lstatSync(dir).mode & 0o011) === 0) return false;
  }
  return true;
}

describe('the ledger files, through the CLI', () => {
  it('under umask 022 in a 0755 GPUQ_HOME, no file gpuq writes shows an --env secret to others', async () => {
    const h = await makeHome();
    homes.push(h);
    chmodSync(h.dir, 0o755);
    const prog = await writeProgram('env.py', 'import os\nprint(len(os.environ.get("TOKEN", "")))\n');
    for (let i = 0; i < 2; i++) {
      const r = await gpuq(h, ['submit', prog, '--env', `TOKEN=${SECRET}`, '--wait']);
      expect(r.code, r.stderr).toBe(0);
    }
    const entries = walk(h.dir);
    for (const name of ['ledger.json', 'ledger.json.bak']) {
      expect(
        entries.find((e) => e.path === join(h.dir, name)),
        name,
      ).toMatchObject({ mode: 0o600 });
    }
    expect(entries.map((e) => relative(h.dir, e.path)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const holding = entries.filter((e) => !e.dir && readFileSync(e.path, 'latin1').includes(SECRET));
    expect(holding.length).toBeGreaterThanOrEqual(2);
    expect(holding.filter((e) => othersCanRead(h.dir, e.path)).map((e) => relative(h.dir, e.path))).toEqual([]);
  });
});

/** Root may mount a small tmpfs here (a container may forbid it). */
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.runIf(canMount())('a full disk under the ledger', () => {
  let mnt = '';
  beforeAll(() => {
    mnt = mkdtempSync(join(tmpdir(), 'gpuq-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', mnt]);
  });
  afterAll(() => {
    if (mnt === '') return;
    try {
      execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]);
    }
    rmSync(mnt, { recursive: true, force: true });
  });

  it('submit exits 5 naming the file, the ledger unchanged, no temp file left', async () => {
    const dir = join(mnt, 'home');
    mkdirSync(dir, { mode: 0o700 });
    const base = await makeHome();
    homes.push(base);
    const h: Home = { ...base, dir, env: { ...base.env, GPUQ_HOME: dir } };
    const prog = await writeProgram('hello.py', 'print("hello")\n');
    const first = await gpuq(h, ['submit', prog, '--env', `TOKEN=${SECRET}`, '--wait']);
    expect(first.code, first.stderr).toBe(0);
    const ledger = join(dir, 'ledger.json');
    const before = readFileSync(ledger);

    // fill the file system, page by page, until it refuses
    const fd = openSync(join(mnt, 'filler'), 'w');
    const page = Buffer.alloc(4096, 1);
    try {
      for (;;) writeSync(fd, page);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }

    const r = await gpuq(h, ['submit', prog, '--env', `TOKEN=${SECRET}`]);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain(dir);
    expect(r.stderr).toMatch(/disk is full/);
    expect(r.stderr).toMatch(/Free some space/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(readFileSync(ledger).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);

    // reading still works, and the job is there
    const list = await gpuq(h, ['list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as unknown[]).length).toBe(1);

    // with room again, submits work again
    rmSync(join(mnt, 'filler'));
    const again = await gpuq(h, ['submit', prog, '--wait']);
    expect(again.code, again.stderr).toBe(0);
  });
});
