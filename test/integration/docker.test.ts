/**
 * `--isolation docker` on a real Docker daemon (test/helpers/dockerd.ts: a private dockerd and
 * the image gpuq-test:bookworm, built once from Debian packages): what the container closes and
 * how its end is judged. Each case is one real program through the built CLI; the cases run
 * concurrently against the one daemon, and none may leave a container behind (labels
 * gpuq.job=ID). The local node is this machine as root, so the container runs as a leased uid;
 * the SSH node logs in as an unprivileged user of the docker group.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { need } from '../helpers/capability.js';
import { gpuq, gpuqJson, type Home, makeHome, until, userIds, writeSharedProgram } from '../helpers/cli.js';
import type { NodeReport } from '../../src/services/nodes.js';
import { DOCKER_CACHE, type Dockerd, startDockerd, TEST_IMAGE } from '../helpers/dockerd.js';
import { ensureTestUser, TEST_USER } from '../helpers/hostile.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';

const isRoot = process.getuid?.() === 0;
const root = need(isRoot, 'root, to start a private dockerd');
/** A non-loopback IPv4 address of this machine: from a container without a network, unreachable. */
const hostAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

let d: Dockerd;
let sshd: Sshd | null = null;
let server: Server;
let serverPort = 0;
let connections = 0;
let fixture: string;
const homes: Home[] = [];

beforeAll(async () => {
  root.check();
  d = await startDockerd();
  fixture = await mkdtemp(join(tmpdir(), 'gpuq-docker-'));
  await chmod(fixture, 0o755);
  await mkdir(join(fixture, 'data'), { mode: 0o755 });
  await writeFile(join(fixture, 'data', 'in.txt'), 'the data\n', { mode: 0o644 });
  await mkdir(join(fixture, 'answers'), { mode: 0o755 });
  await writeFile(join(fixture, 'answers', 'secret.txt'), 'the answers\n', { mode: 0o644 });
  server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((res) => server.listen(0, '0.0.0.0', res));
  serverPort = (server.address() as { port: number }).port;
}, 300_000);

afterAll(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
  await sshd?.cleanup();
  server?.close();
  if (fixture) await rm(fixture, { recursive: true, force: true });
  await d?.release();
});

/** The node's docker command: the private daemon's socket. */
const dockerCommand = (socket = d.socket) => ['/usr/bin/docker', '--host', `unix://${socket}`];

async function home(socket?: string, runAs?: string): Promise<Home> {
  const h = await makeHome(
    {
      defaults: { isolation: 'docker' },
      nodes: { local: { transport: 'local', docker: { command: dockerCommand(socket), image: TEST_IMAGE } } },
      competitions: {
        sealed: { data: join(fixture, 'data'), requireBoundary: true },
        ...graded(),
      },
    },
    {},
    { autoCleanup: false, ...(runAs ? { runAs } : {}) },
  );
  homes.push(h);
  return h;
}

/**
 * Competitions whose grader runs in its own container (the image's python3): `dgood` scores the
 * number of lines and reports what it saw, `dfat` goes over its 64 MiB, `dloop` over its 3 s.
 */
const GOOD_GRADER = [
  'import os, sys',
  'sub, ans, fb = sys.argv[1:4]',
  'n = len(open(sub).read().splitlines())',
  'seen = int(open(os.path.join(ans, "secret.txt")).read() == "the answers\\n")',
  'try:',
  '    open(os.path.join(ans, "planted"), "w").write("x")',
  '    wrote = 1',
  'except OSError:',
  '    wrote = 0',
  'paths = int((sub, ans, fb) == ("/gpuq/submission", "/gpuq/answers", "/gpuq/feedback"))',
  'root = int(os.getuid() == 0)',
  // python3-minimal has no json module
  'line = \'{"score": %d, "seen": %d, "wrote": %d, "paths": %d, "root": %d}\\n\' % (n, seen, wrote, paths, root)',
  'open(os.path.join(fb, "results.jsonl"), "w").write(line)',
  'sys.exit(42)',
].join('\n');
function graded(): Record<string, unknown> {
  const comp = (source: string, limits: Record<string, string>) => ({
    data: join(fixture, 'data'),
    answers: join(fixture, 'answers'),
    // One line (the config refuses line breaks): the source as a Python string literal.
    grader: ['python3', '-c', `exec(${JSON.stringify(source)})`],
    graderLimits: limits,
  });
  return {
    dgood: comp(GOOD_GRADER, { timeout: '60s' }),
    dfat: comp('import time\nx = b"1" * (200 << 20)\ntime.sleep(30)\n', { timeout: '60s', memory: '64m' }),
    dloop: comp('import time\nwhile True:\n    time.sleep(1)\n', { timeout: '3s' }),
    dslow: comp('import time\nprint("grading", flush=True)\ntime.sleep(120)\n', { timeout: '60s' }),
  };
}
const WRITES = 'open("submission.csv", "w").write("a\\nb\\nc\\n")\n';

/** `gpuq submit PROGRAM --wait --json OPTS…`: the exit code and the job. */
async function submit(
  h: Home,
  name: string,
  source: string,
  opts: string[],
): Promise<{ code: number | null; job: Job }> {
  const prog = await writeSharedProgram(name, source);
  const r = await gpuq(h, ['submit', prog, '--wait', '--json', ...opts]);
  try {
    return { code: r.code, job: JSON.parse(r.stdout) as Job };
  } catch {
    throw new Error(`gpuq submit ${name} exited ${r.code} without a job: ${r.stderr}`);
  }
}

/** Submits without waiting; the job's id. */
async function start(h: Home, name: string, source: string, opts: string[] = []): Promise<string> {
  const prog = await writeSharedProgram(name, source);
  const r = await gpuq(h, ['submit', prog, '-q', ...opts]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

const jobDir = (h: Home, id: string) => join(h.dir, 'nodes', 'local', 'jobs', id);
const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};
const show = (job: Job) => JSON.stringify(job.verdict, null, 2);

/** Prints "started", then sleeps: a gate the test waits for in stdout.log. */
const SLEEPER = 'import time\nprint("started", flush=True)\ntime.sleep(120)\n';

describe.concurrent('--isolation docker', () => {
  it('a memory hog is oom, with the container as evidence (OOMKilled, its cgroup), and no container left', async () => {
    const h = await home();
    const { code, job } = await submit(h, 'hog.py', 'x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n', [
      '--memory',
      '128m',
      '--timeout',
      '60s',
    ]);
    expect(code, show(job)).toBe(12);
    expect(job.verdict?.class, show(job)).toBe('oom');
    const status = JSON.parse(read(join(jobDir(h, job.id), 'status.json')));
    expect(status.boundary).toBe('container');
    expect(status.containerOomKilled === true || status.oomKills > 0, JSON.stringify(status)).toBe(true);
    expect(d.containers(job.id)).toEqual([]);
  });

  it('a fork bomb under --pids is limit/pids', async () => {
    const h = await home();
    const { code, job } = await submit(
      h,
      'bomb.py',
      'import os, time\nfor i in range(500):\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n',
      ['--pids', '20', '--timeout', '60s'],
    );
    expect(code, show(job)).toBe(14);
    expect(job.verdict, show(job)).toMatchObject({ class: 'limit', cause: 'pids' });
    expect(d.containers(job.id)).toEqual([]);
  });

  it('cannot reach a port on the host: failed, cause no_network', async () => {
    expect(hostAddress, 'a non-loopback IPv4 address on this machine').toBeDefined();
    const h = await home();
    const { code, job } = await submit(
      h,
      'net.py',
      `import socket\nsocket.create_connection((${JSON.stringify(hostAddress)}, ${serverPort}), timeout=10)\n`,
      ['--timeout', '60s'],
    );
    expect(code, show(job)).toBe(10);
    expect(job.verdict?.cause, show(job)).toBe('no_network');
    expect(job.verdict?.hints.join(' ')).toMatch(/no network/);
    expect(connections).toBe(0);
  });

  it('sees the data read-only, not the answers, and runs as neither root nor the supervisor; --keep-container keeps it', async () => {
    const h = await home();
    const answers = join(fixture, 'answers', 'secret.txt');
    const { code, job } = await submit(
      h,
      'peek.py',
      `import os\nprint("uid", os.getuid())\nprint("data", open(os.environ["GPUQ_DATA"] + "/in.txt").read().strip())\n` +
        `print("answers", os.path.exists(${JSON.stringify(answers)}), os.path.exists("/gpuq/answers"))\n` +
        `open(os.environ["GPUQ_DATA"] + "/out.txt", "w").write("x")\n`,
      ['--competition', 'sealed', '--keep-container', '--timeout', '60s'],
    );
    expect(code, show(job)).toBe(10);
    expect(job.verdict?.cause, show(job)).toBe('read_only_fs');
    const out = read(join(jobDir(h, job.id), 'stdout.log'));
    expect(out).toContain('data the data');
    expect(out).toContain('answers False False');
    expect(out).not.toMatch(/^uid 0$/m);
    expect(d.containers(job.id)).toEqual([`gpuq-${job.id}`]);
    d.docker(['rm', '-f', `gpuq-${job.id}`]);
  });

  it('the timeout stops the container: timeout, and no container left', async () => {
    const h = await home();
    const { code, job } = await submit(h, 'sleep.py', SLEEPER, ['--timeout', '3s', '--grace', '2s']);
    expect(code, show(job)).toBe(11);
    expect(job.verdict?.class).toBe('timeout');
    expect(d.containers(job.id)).toEqual([]);
  });

  it('cancel stops the container: cancelled, and no container left', async () => {
    const h = await home();
    const id = await start(h, 'sleep.py', SLEEPER);
    expect(await until(() => read(join(jobDir(h, id), 'stdout.log')).includes('started'), 60_000)).toBe(true);
    const c = await gpuq(h, ['cancel', id]);
    expect(c.code, c.stderr).toBe(0);
    const w = await gpuq(h, ['wait', id]);
    expect(w.code, w.stderr).toBe(16);
    expect(d.containers(id)).toEqual([]);
  });

  it('a supervisor killed with SIGKILL: the job is lost and its container removed at the next look', async () => {
    const h = await home();
    const id = await start(h, 'sleep.py', SLEEPER);
    const dir = jobDir(h, id);
    expect(await until(() => read(join(dir, 'stdout.log')).includes('started'), 60_000)).toBe(true);
    const sup = Number(/"supervisorPid":(\d+)/.exec(read(join(dir, 'status.json')))?.[1]);
    process.kill(sup, 'SIGKILL');
    // The container outlives its supervisor until gpuq looks.
    expect(d.containers(id)).toEqual([`gpuq-${id}`]);
    const w = await gpuq(h, ['wait', id]);
    expect(w.code, w.stderr).toBe(17);
    expect(d.containers(id)).toEqual([]);
  });

  it('refuses a missing image, a daemon that does not answer, a socket the account may not use (exit 3), a malformed name (exit 2)', async () => {
    const h = await home();
    const prog = await writeSharedProgram('hello.py', 'print("hello")\n');
    const missing = await gpuq(h, ['submit', prog, '--image', 'gpuq-test:missing']);
    expect(missing.code, missing.stderr).toBe(3);
    expect(missing.stderr).toMatch(/image gpuq-test:missing is not there[\s\S]*docker pull/);
    const bad = await gpuq(h, ['submit', prog, '--image', 'Not An Image']);
    expect(bad.code, bad.stderr).toBe(2);
    const down = await gpuq(await home(join(DOCKER_CACHE, 'stopped.sock')), ['submit', prog]);
    expect(down.code, down.stderr).toBe(3);
    expect(down.stderr).toMatch(/Docker daemon does not answer[\s\S]*[Ss]tart it/);
    // An account outside the docker group (the socket is root:docker 0660).
    expect(ensureTestUser(), `root, to create the user ${TEST_USER}`).toBe(true);
    const denied = await gpuq(await home(undefined, TEST_USER), ['submit', prog]);
    expect(denied.code, denied.stderr).toBe(3);
    expect(denied.stderr).toMatch(/account gpuqrun may not use the Docker daemon's socket[\s\S]*docker group/);
  });

  it('runs on an SSH node whose login user is in the docker group, as that user', async () => {
    sshd = await startSshd({ alias: 'docker-node' });
    execFileSync('usermod', ['-aG', 'docker', sshd.user]);
    const h = await makeHome(
      {
        nodes: {
          gpu: sshd.configEntry({ docker: { command: dockerCommand(), image: TEST_IMAGE } }),
        },
      },
      { GPUQ_SSH_CONFIG: sshd.sshConfigPath },
      { autoCleanup: false },
    );
    homes.push(h);
    await writeFile(join(h.dir, 'known_hosts'), `${sshd.knownHostsLine('right')}\n`);
    const { code, job } = await submit(h, 'who.py', 'import os\nprint("uid", os.getuid())\n', [
      '--isolation',
      'docker',
      '--timeout',
      '60s',
    ]);
    expect(code, show(job)).toBe(0);
    // gpuq nodes: Docker is usable by the login user there, with its version and cgroups.
    const [report] = await gpuqJson<NodeReport[]>(h, ['nodes']);
    expect(report?.docker, JSON.stringify(report)).toMatchObject({ usable: true, rootless: false });
    expect(report?.docker?.version).toMatch(/^\d+\.\d+/);
    expect(report?.docker?.cgroupVersion).toMatch(/^[12]$/);
    const out = read(`${job.remote?.dir}/stdout.log`);
    expect(out.trim()).toBe(`uid ${userIds(sshd.user)?.uid}`);
    expect(d.containers(job.id)).toEqual([]);
  });

  it('grades in a container of its own: sees /gpuq/submission and /gpuq/answers, cannot write the answers; gpuq grade grades in one again', async () => {
    const h = await home();
    const { code, job } = await submit(h, 'writes.py', WRITES, ['--competition', 'dgood', '--timeout', '60s']);
    expect(code, show(job)).toBe(0);
    expect(job.score, show(job)).toBe(3);
    // Not root: the answers are readable by everyone, so the grader runs as nobody (grade.py grader_user).
    expect(job.metrics).toMatchObject({ seen: 1, wrote: 0, paths: 1, root: 0 });
    expect(job.gradings?.[0]?.number).toBe(1);
    expect(read(join(fixture, 'answers', 'planted'))).toBe('');
    expect(d.containers(job.id)).toEqual([]);
    const again = await gpuq(h, ['grade', job.id, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const [regraded] = JSON.parse(again.stdout) as Job[];
    expect(regraded?.gradings?.map((g) => [g.number, g.score])).toEqual([
      [1, 3],
      [2, 3],
    ]);
    expect(d.containers(job.id)).toEqual([]);
  });

  it('a grader over its memory is grading_failed/grader_oom (the container OOMKilled)', async () => {
    const h = await home();
    const { code, job } = await submit(h, 'writes.py', WRITES, ['--competition', 'dfat', '--timeout', '60s']);
    expect(code, show(job)).toBe(18);
    expect(job.verdict, show(job)).toMatchObject({ class: 'grading_failed', cause: 'grader_oom' });
    expect(d.containers(job.id)).toEqual([]);
  });

  it('a looping grader is grading_failed/grader_timeout, and no container is left', async () => {
    const h = await home();
    const { code, job } = await submit(h, 'writes.py', WRITES, ['--competition', 'dloop', '--timeout', '60s']);
    expect(code, show(job)).toBe(18);
    expect(job.verdict, show(job)).toMatchObject({ class: 'grading_failed', cause: 'grader_timeout' });
    expect(d.containers(job.id)).toEqual([]);
  });

  it("cancel while grading stops the grader's container: no container left", async () => {
    const h = await home();
    const id = await start(h, 'writes.py', WRITES, ['--competition', 'dslow', '--timeout', '60s']);
    // The grader prints once its container runs: a file to watch (not `docker ps` every 50 ms).
    const log = join(jobDir(h, id), 'gradings', '1', 'stdout.log');
    expect(await until(() => read(log).includes('grading'), 60_000)).toBe(true);
    expect(d.containers(id)).toContain(`gpuq-${id}-grade`);
    const c = await gpuq(h, ['cancel', id]);
    expect(c.code, c.stderr).toBe(0);
    const w = await gpuq(h, ['wait', id, '--json']);
    expect(d.containers(id)).toEqual([]);
    expect(w.stdout).toMatch(/grading_failed|cancelled/);
  });
});
