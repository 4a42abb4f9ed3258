/**
 * `submit --include`, `gpuq get` and `submit` of several files, through the built CLI: the local
 * node and a real sshd. The job that writes its outputs is hostile: links out of its folder (to a
 * file of the submitter's and to /etc/passwd), names with control characters; nothing outside
 * DIR is written and nothing outside the job's folder is read. Tests run concurrently, each in
 * its own home.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { gpuq, gpuqJson, type Home, makeHome, NO_BOUNDARY_CONFIG } from '../helpers/cli.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';

/** Jobs in the bulk-submit test: they start in one round trip (node/batch.ts) and exit at once. */
const BULK = 50;

let work: string;
const homes: Home[] = [];
let sshd: Sshd | undefined;

async function home(config: unknown = NO_BOUNDARY_CONFIG, env: NodeJS.ProcessEnv = {}): Promise<Home> {
  const h = await makeHome(config, env, { autoCleanup: false });
  homes.push(h);
  return h;
}

/** Every file under `dir`, relative, sorted (links listed as such, never followed). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(`${relative(dir, p)}${e.isSymbolicLink() ? ' (link)' : ''}`);
    }
  };
  await walk(dir);
  return out.sort();
}

const SECRET = 'submitter-secret-9f1c';
let secretFile: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gpuq-include-'));
  secretFile = join(work, 'secret.txt');
  await writeFile(secretFile, SECRET);
  await mkdir(join(work, 'proj/data/nested/deeper'), { recursive: true });
  await writeFile(join(work, 'proj/data/train.csv'), 'a,b\n1,2\n');
  await writeFile(join(work, 'proj/data/nested/deeper/x.txt'), 'deep');
  await writeFile(join(work, 'proj/helper.py'), 'VALUE = 42\n');
  // The job: checks its inputs landed as documented, then leaves hostile outputs.
  await writeFile(
    join(work, 'proj/main.py'),
    [
      'import os, helper',
      'assert helper.VALUE == 42',
      'assert open("data/train.csv").read() == "a,b\\n1,2\\n"',
      'assert open("data/nested/deeper/x.txt").read() == "deep"',
      'os.makedirs("out/sub", exist_ok=True)',
      'open("out/result.txt", "w").write("score 1")',
      'open("out/sub/deep.txt", "w").write("deep out")',
      'open("...", "w").write("dots")',
      'open("evil\\n..", "w").write("newline")',
      'open("data/created.txt", "w").write("new in an uploaded folder")',
      'open("helper.py", "a").write("# changed\\n")',
      `os.symlink(${JSON.stringify(secretFile)}, "leak")`,
      'os.symlink("/etc/passwd", "out/passwd")',
      'os.symlink("/", "root")',
      'os.mkfifo("pipe")',
      'print("done")',
    ].join('\n'),
  );
  sshd = await startSshd({ alias: 'inc-node' });
});
afterAll(async () => {
  await Promise.all(homes.map((h) => h.cleanup()));
  await sshd?.cleanup();
  await rm(work, { recursive: true, force: true });
});

describe.concurrent('include and get', () => {
  it('uploads a folder and a file next to the program; get copies only what the job created, safely', async () => {
    const h = await home();
    const cwd = join(work, 'proj');
    const s = await gpuq(
      h,
      ['submit', 'main.py', '--include', 'data/', '--include', './helper.py', '--gpus', '0', '--wait'],
      { cwd },
    );
    expect(s.code, s.stderr).toBe(0);
    const id = s.stdout.split('\n')[0] as string;

    const out = await mkdtemp(join(work, 'out-'));
    const g = await gpuq(h, ['get', id, '--out', join(out, 'r')], { cwd: out });
    expect(g.code, g.stderr).toBe(0);
    // Created files only: not main.py, helper.py (changed, still uploaded) nor data/train.csv;
    // no __pycache__ of helper.py either (PYTHONDONTWRITEBYTECODE).
    expect(await tree(out)).toEqual(['r/...', 'r/data/created.txt', 'r/out/result.txt', 'r/out/sub/deep.txt']);
    expect(g.stderr).toMatch(/left out "leak": a symbolic link/);
    expect(g.stderr).toMatch(/left out "out\/passwd": a symbolic link/);
    expect(g.stderr).toMatch(/left out "evil\\n\.\.": an unsafe name/);
    expect(g.stderr).toMatch(/left out "pipe": not a regular file/);
    for (const f of await tree(out)) expect(await readFile(join(out, f), 'utf8')).not.toContain(SECRET);

    // Again: nothing overwritten without --force (exit 2 naming the file), then with it.
    const again = await gpuq(h, ['get', id, '--out', join(out, 'r')], { cwd: out });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/files exist already: .*r\/\.\.\.,.*--force/s);
    const forced = await gpuq(h, ['get', id, 'out', '--out', join(out, 'r'), '--force'], { cwd: out });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout.split('\n').filter(Boolean)).toEqual(['out/result.txt', 'out/sub/deep.txt']);

    // Explicit paths, the default folder ./<id>/, an uploaded file when asked for.
    const e = await gpuq(h, ['get', id, 'helper.py', 'data/nested'], { cwd: out });
    expect(e.code, e.stderr).toBe(0);
    expect((await tree(join(out, id))).sort()).toEqual(['data/nested/deeper/x.txt', 'helper.py']);
    // A link, a missing path, ".." or an absolute path asked for: exit 2, nothing written.
    const bads = [['leak'], ['nope.txt'], ['../etc/passwd'], ['/etc/passwd'], ['root/etc/passwd']];
    const refused = await Promise.all(
      bads.map((bad) => gpuq(h, ['get', id, ...bad, '--out', join(out, 'bad')], { cwd: out })),
    );
    for (const [i, r] of refused.entries()) expect(r.code, `${bads[i]}: ${r.stderr}`).toBe(2);
    expect(await tree(join(out, 'bad'))).toEqual([]);
    // A link planted in DIR is not written through.
    await mkdir(join(out, 'planted'));
    await symlink(work, join(out, 'planted', 'out'));
    const p = await gpuq(h, ['get', id, 'out', '--out', join(out, 'planted'), '--force'], { cwd: out });
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/symbolic link; gpuq writes nothing through it/);
    expect(await tree(work).then((t) => t.filter((f) => f.startsWith('result')))).toEqual([]);
    // No such job: 4.
    expect((await gpuq(h, ['get', 'zzzzzzzz'], { cwd: out })).code).toBe(4);
  });

  it('refuses a link, an unsafe name, a clash and an upload over the cap, recording nothing', async () => {
    const h = await home({ ...NO_BOUNDARY_CONFIG, defaults: { maxUploadSize: '4k' } });
    const d = await mkdtemp(join(work, 'bad-'));
    await writeFile(join(d, 'p.py'), 'print(1)\n');
    await mkdir(join(d, 'linked'));
    await symlink(secretFile, join(d, 'linked', 'secret'));
    await mkdir(join(d, 'nl'));
    await writeFile(join(d, 'nl', 'a\nb'), 'x');
    await mkdir(join(d, 'other'));
    await writeFile(join(d, 'other', 'p.py'), 'print(2)\n');
    await writeFile(join(d, 'big.bin'), Buffer.alloc(8192));
    const cases: Array<[string[], RegExp]> = [
      [['--include', 'linked'], /symbolic link; gpuq does not follow links/],
      [['--include', 'linked/secret'], /symbolic link/],
      [['--include', 'nl'], /"nl\/a\\nb" holds a control character/],
      [['--include', 'other/p.py'], /two things would land on "p\.py" .*the program itself/],
      [['--include', '/'], /not \/ itself/],
      [['--include', 'big.bin'], /over the 4 KiB limit.*maxUploadSize/s],
      [['--include', 'missing'], /no such file or folder/],
    ];
    await Promise.all(
      cases.map(async ([args, why]) => {
        const r = await gpuq(h, ['submit', 'p.py', ...args, '--gpus', '0'], { cwd: d });
        expect(r.code, `${args}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(why);
      }),
    );
    expect(await gpuqJson<Job[]>(h, ['list', '--all'])).toEqual([]);
  });

  it(`submits ${BULK} files as ${BULK} jobs over one connection`, async () => {
    const h = await home();
    const d = await mkdtemp(join(work, 'many-'));
    const files: string[] = [];
    for (let i = 0; i < BULK; i++) {
      files.push(`p${String(i).padStart(2, '0')}.sh`);
      await writeFile(join(d, files[i] as string), `#!/bin/sh\necho ${i}\n`, { mode: 0o755 });
    }
    const r = await gpuq(h, ['submit', ...files, '--gpus', '0', '-q'], { cwd: d });
    expect(r.code, r.stderr).toBe(0);
    const ids = r.stdout.split('\n').filter(Boolean);
    expect(new Set(ids).size).toBe(BULK);
    const jobs = await gpuqJson<Job[]>(h, ['list', '--all']);
    expect(jobs).toHaveLength(BULK);
    // Each started on the node (a folder recorded), each under its own file's name.
    expect(jobs.filter((j) => j.remote === null || j.state === 'pending')).toEqual([]);
    expect(jobs.map((j) => j.name).sort()).toEqual(files);
    // One wait for all: each ran its own program.
    const w = await gpuq(h, ['wait', ...ids]);
    expect(w.code, w.stderr).toBe(0);
    const done = await gpuqJson<Job[]>(h, ['list', '--all']);
    expect(done.filter((j) => j.verdict?.class !== 'succeeded')).toEqual([]);
    // the program's pid, where the batch did not see it yet, is recorded with the verdict
    expect(done.filter((j) => typeof j.remote?.pid !== 'number')).toEqual([]);
    for (const j of done)
      expect(await readFile(join(j.remote?.dir as string, 'stdout.log'), 'utf8')).toBe(
        `${Number(j.name.slice(1, 3))}\n`,
      );
    // A bad file among them: exit 2, nothing more recorded.
    const bad = await gpuq(h, ['submit', 'p00.sh', 'missing.sh', '--gpus', '0'], { cwd: d });
    expect(bad.code).toBe(2);
    expect(await gpuqJson<Job[]>(h, ['list', '--all'])).toHaveLength(BULK);
  }, 240_000);

  it('over SSH: one include and get round trip', async () => {
    const s = sshd as Sshd;
    const h = await home({ nodes: { n: s.configEntry() } }, { GPUQ_SSH_CONFIG: s.sshConfigPath });
    await writeFile(join(h.dir, 'known_hosts'), `${s.knownHostsLine('right')}\n`);
    const d = await mkdtemp(join(work, 'ssh-'));
    await mkdir(join(d, 'in'));
    await writeFile(join(d, 'in', 'data.bin'), Buffer.alloc(300 * 1024, 7));
    await writeFile(
      join(d, 'job.py'),
      'import os\nd = open("in/data.bin", "rb").read()\nos.makedirs("o", exist_ok=True)\n' +
        'open("o/copy.bin", "wb").write(d[::-1] + b"!")\nos.symlink("/etc/passwd", "o/pw")\n',
    );
    const sub = await gpuq(h, ['submit', 'job.py', '--include', 'in', '--node', 'n', '--gpus', '0', '--wait'], {
      cwd: d,
    });
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.split('\n')[0] as string;
    const g = await gpuq(h, ['get', id], { cwd: d });
    expect(g.code, g.stderr).toBe(0);
    expect(await tree(join(d, id))).toEqual(['o/copy.bin']);
    const copy = await readFile(join(d, id, 'o/copy.bin'));
    expect(copy.length).toBe(300 * 1024 + 1);
    expect(g.stderr).toMatch(/left out "o\/pw": a symbolic link/);
  });
});
