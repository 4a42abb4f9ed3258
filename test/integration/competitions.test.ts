/**
 * `gpuq competitions` and `gpuq competitions check` through the built CLI, against the local node
 * and a real sshd at once: data, answers and grader found or not, fingerprints that change when
 * the data set does (and only then), the cache on each node, an unknown name (exit 2) and a dead
 * node (exit 3, the others still checked). One home, few CLI calls, run concurrently.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeCheck } from '../../src/services/competitions.js';
import { gpuq, type Home, makeHome, SYSTEM_PYTHON } from '../helpers/cli.js';
import { closedPort } from '../helpers/ssh-transport.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';

let sshd: Sshd;
let home: Home;
let work: string;
let data: string;
let answers: string;
let grader: string;
let deadConfig: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gpuq-comp-'));
  // The SSH node's account reads these too.
  await chmod(work, 0o755);
  data = join(work, 'data');
  answers = join(work, 'answers');
  await mkdir(join(data, 'images'), { recursive: true });
  await mkdir(answers);
  await writeFile(join(data, 'train.csv'), 'x,y\n1,2\n');
  await writeFile(join(data, 'images', 'a.bin'), Buffer.alloc(1000, 7));
  await writeFile(join(answers, 'truth.csv'), 'id,y\n1,2\n');
  grader = join(work, 'grade.py');
  await writeFile(grader, 'import sys\nsys.exit(42)\n');
  for (const d of [data, join(data, 'images'), answers]) await chmod(d, 0o755);
  sshd = await startSshd({ alias: 'comp-node' });
  const competitions = {
    digits: {
      data,
      answers,
      grader: [SYSTEM_PYTHON, grader],
      metric: 'accuracy',
      higherIsBetter: true,
      limits: { timeout: '10m' },
      graderLimits: { timeout: '30s' },
    },
    broken: {
      data: join(work, 'no-such-data'),
      grader: ['gpuq-no-such-grader', join(work, 'no-such-script.py')],
      higherIsBetter: false,
    },
  };
  home = await makeHome(
    { nodes: { local: { transport: 'local' }, ssh: sshd.configEntry() }, competitions },
    {},
    {
      autoCleanup: false,
    },
  );
  await writeFile(join(home.dir, 'known_hosts'), `${sshd.knownHostsLine('right')}\n`);
  // The same, plus a node nothing listens for: a second config file over the same home.
  deadConfig = join(home.dir, 'with-dead.json');
  const port = await closedPort();
  await writeFile(
    deadConfig,
    JSON.stringify({
      nodes: {
        local: { transport: 'local' },
        ssh: sshd.configEntry(),
        dead: {
          transport: 'ssh',
          host: '127.0.0.1',
          port,
          user: sshd.user,
          identityFile: sshd.clientKeyPath,
          connectTimeout: '10s',
        },
      },
      competitions,
    }),
  );
});
afterAll(async () => {
  await home?.cleanup();
  await sshd?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

const check = async (args: string[]): Promise<{ code: number | null; reports: NodeCheck[]; stderr: string }> => {
  const r = await gpuq(home, ['competitions', 'check', ...args, '--json']);
  return { code: r.code, reports: r.stdout.trim() ? (JSON.parse(r.stdout) as NodeCheck[]) : [], stderr: r.stderr };
};

describe('competitions', () => {
  it('lists the competitions of the config, as text and JSON; an unknown name is exit 2', async () => {
    const [text, json, unknown] = await Promise.all([
      gpuq(home, ['competitions']),
      gpuq(home, ['competitions', '--json']),
      gpuq(home, ['competitions', 'check', 'nope']),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^broken\n {2}metric {6}score, lower is better\n/);
    expect(text.stdout).toMatch(/\ndigits\n {2}metric {6}accuracy, higher is better\n/);
    expect(text.stdout).toContain(
      `grader      ${SYSTEM_PYTHON} ${grader}  (at most 30s, 2 GiB of memory, 8 MiB of output)`,
    );
    expect(text.stdout).toMatch(/submission {2}submission\.csv \(at most 100 MiB\)/);
    expect(text.stdout).toMatch(/limits {6}timeout 10m00s/);
    const list = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(list.map((c) => c.name)).toEqual(['broken', 'digits']);
    expect(list[1]).toMatchObject({
      data,
      answers,
      grader: [SYSTEM_PYTHON, grader],
      submission: 'submission.csv',
      metric: 'accuracy',
      higherIsBetter: true,
      graderLimits: { timeoutS: 30, memoryBytes: 2 * 1024 ** 3, outputBytes: 8 * 1024 ** 2 },
      maxSubmissionBytes: 100 * 1024 ** 2,
    });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no competition "nope" in the config\.\nCompetitions in .*: broken, digits\./);
  });

  it('check: per node, what is there and the fingerprints; a changed data set changes its fingerprint', async () => {
    const [first, human, dead] = await Promise.all([
      check([]),
      gpuq(home, ['competitions', 'check']),
      gpuq(home, ['--config', deadConfig, 'competitions', 'check', 'digits', '--json']),
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.reports.map((r) => [r.node, r.reachable, r.error])).toEqual([
      ['local', true, null],
      ['ssh', true, null],
    ]);
    for (const r of first.reports) {
      const [broken, digits] = r.competitions;
      expect(digits?.name).toBe('digits');
      expect(digits?.data).toMatchObject({ path: data, status: 'ok', files: 2, bytes: 1008, error: null });
      expect(digits?.data.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(digits?.answers).toMatchObject({ path: answers, status: 'ok', files: 1, bytes: 9, error: null });
      expect(digits?.grader).toMatchObject({ status: 'ok', resolved: SYSTEM_PYTHON, missingFiles: [] });
      expect(digits?.problems).toEqual([]);
      expect(broken?.data.status).toBe('missing');
      expect(broken?.answers.status).toBe('unset');
      expect(broken?.grader).toMatchObject({ status: 'missing', missingFiles: [join(work, 'no-such-script.py')] });
      expect(broken?.problems).toEqual([
        `the data folder "${join(work, 'no-such-data')}" does not exist`,
        `the grader's program "gpuq-no-such-grader" is not on the node (not found on PATH or at that path)`,
        `the grader's file "${join(work, 'no-such-script.py')}" does not exist`,
      ]);
    }
    // The same folder seen from both nodes: the same fingerprints.
    const fp = (r: NodeCheck | undefined, kind: 'data' | 'answers') =>
      r?.competitions.find((c) => c.name === 'digits')?.[kind].fingerprint;
    expect(fp(first.reports[1], 'data')).toBe(fp(first.reports[0], 'data'));
    expect(fp(first.reports[0], 'data')).not.toBe(fp(first.reports[0], 'answers'));
    // The human form: a table per node and one line per problem.
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^local {2}ok\n/);
    expect(human.stdout).toMatch(/\nssh {2}ok\n/);
    expect(human.stdout).toMatch(
      /\n {2}digits +sha256:[0-9a-f]{12} \(2 files, 1008 B\) +sha256:[0-9a-f]{12} \(1 file, 9 B\) +ok \(/,
    );
    expect(human.stdout.match(/ {2}problem: broken: the data folder .* does not exist\n/g)).toHaveLength(2);
    // A dead node: exit 3, its reason, and the others checked all the same.
    expect(dead.code, dead.stderr).toBe(3);
    const deadReports = JSON.parse(dead.stdout) as NodeCheck[];
    expect(deadReports.map((r) => [r.node, r.reachable])).toEqual([
      ['local', true],
      ['ssh', true],
      ['dead', false],
    ]);
    expect(deadReports[2]?.error).toMatch(/refused|ECONNREFUSED/i);
    expect(deadReports[0]?.competitions.map((c) => c.name)).toEqual(['digits']);

    // Each node keeps its cache under its workdir.
    expect(existsSync(join(home.dir, 'nodes', 'local', '.cache', 'fingerprints.json'))).toBe(true);
    const sshHome = execFileSync('getent', ['passwd', sshd.user], { encoding: 'utf8' }).split(':')[5] as string;
    const sshCache = join(sshHome, `gpuq-${sshd.port}`, '.cache', 'fingerprints.json');
    expect(Object.keys(JSON.parse(readFileSync(sshCache, 'utf8')) as object).length).toBeGreaterThanOrEqual(3);

    // The data set changes (a file added, one rewritten in place with the same size): new fingerprint.
    await writeFile(join(data, 'test.csv'), 'x\n3\n');
    await chmod(join(data, 'test.csv'), 0o644);
    await writeFile(join(data, 'images', 'a.bin'), Buffer.alloc(1000, 8));
    const second = await check(['digits']);
    expect(second.code, second.stderr).toBe(0);
    for (const r of second.reports) {
      expect(r.competitions.map((c) => c.name)).toEqual(['digits']);
      expect(fp(r, 'data')).not.toBe(fp(first.reports[0], 'data'));
      expect(r.competitions[0]?.data).toMatchObject({ files: 3, bytes: 1012 });
      expect(fp(r, 'answers')).toBe(fp(first.reports[0], 'answers'));
    }
    // The data folder gone: said per node, still exit 0 (the nodes answered).
    await rm(data, { recursive: true });
    const third = await check(['digits']);
    expect(third.code, third.stderr).toBe(0);
    for (const r of third.reports)
      expect(r.competitions[0]?.problems).toEqual([`the data folder "${data}" does not exist`]);
  });
});
