/**
 * gpuq's output through real pipes (bash `|`), as scripts and CI use it: a slow reader gets every
 * byte and the exit code; a reader that leaves early (`| head`) ends gpuq quietly with 141; a bug
 * is one line on stderr, its stack only under GPUQ_DEBUG=1.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, gpuq, type Home, makeHome, REPO, writeProgram } from '../helpers/cli.js';

/** Lines the big job prints: 40 000 × 53 bytes, about 2 MiB. */
const BIG_LINES = 40_000;
const bigOutput = (): string =>
  Array.from({ length: BIG_LINES }, (_, i) => `line ${String(i).padStart(6, '0')} ${'x'.repeat(40)}\n`).join('');

let home: Home;
let dir: string;
let bigId: string;

/** Runs a bash script with the home's environment ($GPUQ is the binary); resolves on its end. */
function bash(script: string, env: NodeJS.ProcessEnv = home.env): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], {
      cwd: REPO,
      env: { ...env, GPUQ: `${process.execPath} ${BIN}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

beforeAll(async () => {
  home = await makeHome();
  dir = await mkdtemp(join(tmpdir(), 'gpuq-pipe-'));
  const prog = await writeProgram(
    'big.py',
    `import sys\nfor i in range(${BIG_LINES}):\n    sys.stdout.write("line %06d %s\\n" % (i, "x" * 40))\n`,
  );
  const r = await gpuq(home, ['submit', prog, '--wait', '-q']);
  expect(r.code, r.stderr).toBe(0);
  bigId = r.stdout.trim();
}, 60_000);

afterAll(async () => {
  await home.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe('a slow reader gets every byte', () => {
  it('gpuq logs of a job with 2 MiB of output, read after a pause', async () => {
    const out = join(dir, 'logs.out');
    const r = await bash(`$GPUQ logs ${bigId} | { sleep 1; cat > ${out}; }; echo "\${PIPESTATUS[0]}"`);
    expect(r.stdout.trim()).toBe('0');
    const got = await readFile(out, 'utf8');
    expect(got.length).toBe(bigOutput().length);
    expect(got === bigOutput()).toBe(true);
  }, 60_000);

  it('gpuq list --json --all of 400 jobs parses whole, read after a pause', async () => {
    const many = await makeHome();
    try {
      const ledger = JSON.parse(await readFile(join(home.dir, 'ledger.json'), 'utf8')) as {
        jobs: Record<string, unknown>[];
      };
      const job = ledger.jobs[0] as Record<string, unknown>;
      const base = Date.parse(job.createdAt as string);
      ledger.jobs = Array.from({ length: 400 }, (_, i) => ({
        ...job,
        id: `p${i.toString(36).padStart(7, '0')}`,
        createdAt: new Date(base - i * 1000).toISOString(),
      }));
      await writeFile(join(many.dir, 'ledger.json'), JSON.stringify(ledger));
      const out = join(dir, 'list.out');
      const r = await bash(`$GPUQ list --json --all | { sleep 1; cat > ${out}; }; echo "\${PIPESTATUS[0]}"`, many.env);
      expect(r.stdout.trim()).toBe('0');
      const text = await readFile(out, 'utf8');
      expect(text.length).toBeGreaterThan(128 * 1024);
      const jobs = JSON.parse(text) as { id: string }[];
      expect(jobs).toHaveLength(400);
      expect(jobs[399]?.id).toBe(`p${(399).toString(36).padStart(7, '0')}`);
    } finally {
      await many.cleanup();
    }
  }, 60_000);
});

describe('a reader that leaves early (| head) ends gpuq quietly', () => {
  it('gpuq logs | head -2: two lines, exit 141, nothing on stderr', async () => {
    const err = join(dir, 'logs-head.err');
    const r = await bash(`$GPUQ logs ${bigId} 2>${err} | head -2; echo "code \${PIPESTATUS[0]}"`);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual(['line 000000 '.padEnd(52, 'x'), 'line 000001 '.padEnd(52, 'x'), 'code 141']);
    expect(await readFile(err, 'utf8')).toBe('');
  }, 60_000);

  it('gpuq watch --plain | head -2 on a running job: leaves at once, exit 141, no stack trace', async () => {
    const prog = await writeProgram('ticks.sh', 'for i in $(seq 1 600); do echo "tick $i"; sleep 0.1; done\n');
    const s = await gpuq(home, ['submit', prog, '-q']);
    expect(s.code, s.stderr).toBe(0);
    const id = s.stdout.trim();
    try {
      const err = join(dir, 'watch-head.err');
      const r = await bash(`$GPUQ watch --plain ${id} 2>${err} | head -2; echo "code \${PIPESTATUS[0]}"`);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[2]).toBe('code 141');
      expect(await readFile(err, 'utf8')).toBe('');
    } finally {
      await gpuq(home, ['cancel', id]);
    }
  }, 60_000);
});

describe('a bug in gpuq', () => {
  let bug: string;
  let asyncBug: string;
  let sleeper: string;
  beforeAll(async () => {
    const prog = await writeProgram('sleep.sh', 'sleep 120\n');
    const s = await gpuq(home, ['submit', prog, '-q']);
    expect(s.code, s.stderr).toBe(0);
    sleeper = s.stdout.trim();
    // Planted through a preload: printing a JSON array throws, as a bug in gpuq's own code would.
    bug = join(dir, 'bug.mjs');
    await writeFile(
      bug,
      `const stringify = JSON.stringify;
JSON.stringify = function (v, r, s) {
  if (s === 2 && Array.isArray(v)) throw new TypeError('planted bug');
  return stringify.call(this, v, r, s);
};
`,
    );
    // A rejection nobody awaits, while a command runs.
    asyncBug = join(dir, 'async-bug.mjs');
    await writeFile(asyncBug, `setTimeout(() => Promise.reject(new RangeError('planted async bug')), 500);\n`);
  }, 30_000);
  afterAll(async () => {
    await gpuq(home, ['cancel', sleeper]);
  }, 30_000);

  const withPreload = (file: string, extra: NodeJS.ProcessEnv = {}): Home => ({
    ...home,
    env: { ...home.env, NODE_OPTIONS: `--import ${file}`, ...extra },
  });

  it('prints one line and exits 1', async () => {
    const r = await gpuq(withPreload(bug), ['list', '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^gpuq: internal error \(a bug in gpuq\): planted bug; .*GPUQ_DEBUG=1.*\n$/);
    expect(r.stderr.split('\n')).toHaveLength(2);
  }, 30_000);

  it('adds the stack trace under GPUQ_DEBUG=1', async () => {
    const r = await gpuq(withPreload(bug, { GPUQ_DEBUG: '1' }), ['list', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^gpuq: internal error \(a bug in gpuq\): planted bug\nTypeError: planted bug\n\s+at /);
  }, 30_000);

  it('that escapes the command (an unhandled rejection) is one line and exit 1 too', async () => {
    // `wait` on a running job is still waiting when the rejection comes.
    const r = await gpuq(withPreload(asyncBug), ['wait', sleeper]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/gpuq: internal error \(a bug in gpuq\): planted async bug; .*\n$/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const debug = await gpuq(withPreload(asyncBug, { GPUQ_DEBUG: '1' }), ['wait', sleeper]);
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/planted async bug\nRangeError: planted async bug\n\s+at /);
  }, 30_000);
});
