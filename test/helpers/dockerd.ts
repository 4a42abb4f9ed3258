/**
 * A private, real Docker daemon for tests: its own data root, socket, exec root and pid file
 * under one fixed cache folder (/var/tmp/gpuq-test-docker), never the machine's own daemon. The
 * data root is kept between runs so the test image (`gpuq-test:bookworm`, built from Debian
 * packages with mmdebstrap, about half a minute) is built once; concurrent builds are guarded
 * with flock. Several test files share the daemon: each holds a shared flock on `users.lock`
 * (through a child `flock -s … cat` reading a pipe from the test process), and the last one out (an exclusive lock it can take)
 * stops it. When dockerd or mmdebstrap is missing, startDockerd() FAILS with the command to
 * install them (tests must not silently skip).
 *
 *   const d = await startDockerd();   // in beforeAll: DOCKER_HOST=d.host for the node
 *   d.env                              // {DOCKER_HOST} for a node's environment
 *   await d.release();                 // in afterAll: stops the daemon when no other file uses it
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The cache folder every test run shares (data root kept: the image survives between runs). */
export const DOCKER_CACHE = '/var/tmp/gpuq-test-docker';
/** The test image: Debian bookworm with python3-minimal and procps. */
export const TEST_IMAGE = 'gpuq-test:bookworm';
const DOCKERD = '/usr/sbin/dockerd';
/** Starts the daemon and builds the image (shared with bench/docker.js). */
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'dockerd.sh');
/** Debian's client, which matches the daemon (a newer one negotiates down too). */
const DOCKER_CLIENT = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export interface Dockerd {
  /** `unix:///…/docker.sock`, for DOCKER_HOST. */
  readonly host: string;
  readonly socket: string;
  /** The docker client binary the helper uses. */
  readonly client: string;
  /** `{DOCKER_HOST: host}`. */
  readonly env: Record<string, string>;
  /** Runs the docker client against this daemon; returns stdout (throws on failure). */
  docker(args: string[], input?: string): string;
  /** Names of the containers (all states) carrying the label gpuq.job=ID (any gpuq job without an id). */
  containers(jobId?: string): string[];
  /** Stops using the daemon; the last user stops it. */
  release(): Promise<void>;
}

/** Starts (or joins) the shared private daemon and makes sure the test image exists. */
export async function startDockerd(): Promise<Dockerd> {
  for (const [bin, pkg] of [
    [DOCKERD, 'docker.io'],
    ['/usr/bin/mmdebstrap', 'mmdebstrap'],
  ] as const) {
    if (!existsSync(bin))
      throw new Error(`${bin} is missing: the Docker tests need it. Install it with \`apt-get install -y ${pkg}\`.`);
  }
  mkdirSync(DOCKER_CACHE, { recursive: true, mode: 0o755 });
  const socket = join(DOCKER_CACHE, 'docker.sock');
  const host = `unix://${socket}`;
  const env = { ...process.env, DOCKER_HOST: host } as NodeJS.ProcessEnv;
  const usersLock = join(DOCKER_CACHE, 'users.lock');
  // Hold a shared lock for as long as this file uses the daemon: `cat` on a pipe from this
  // process, so the lock goes when this process does, however it ends.
  // It says "held" once it holds it: a last user's stop cannot slip in between.
  const holder: ChildProcess = spawn('flock', ['-s', usersLock, 'bash', '-c', 'echo held; exec cat'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  holder.unref();
  await new Promise<void>((res, rej) => {
    holder.stdout?.once('data', () => res());
    holder.once('exit', () => rej(new Error(`could not lock ${usersLock}`)));
  });
  const docker = (args: string[], input?: string): string =>
    execFileSync(DOCKER_CLIENT, args, { env, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  // Start the daemon unless it runs; build the image unless it exists: one file at a time.
  const r = spawnSync(
    'flock',
    ['-o', join(DOCKER_CACHE, 'start.lock'), 'bash', SCRIPT, 'start', DOCKER_CACHE, TEST_IMAGE, DOCKER_CLIENT],
    {
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  if (r.status !== 0) {
    holder.kill();
    throw new Error(`could not start the test dockerd or build ${TEST_IMAGE}: ${r.stderr || r.error}`);
  }
  return {
    host,
    socket,
    client: DOCKER_CLIENT,
    env: { DOCKER_HOST: host },
    docker,
    containers(jobId?: string) {
      const out = docker([
        'ps',
        '-a',
        '--filter',
        `label=gpuq.job${jobId ? `=${jobId}` : ''}`,
        '--format',
        '{{.Names}}',
      ]);
      return out.split('\n').filter(Boolean);
    },
    async release() {
      holder.stdin?.end();
      await new Promise((res) => (holder.exitCode !== null ? res(null) : holder.once('exit', res)));
      // The last user (an exclusive lock it can take at once) stops the daemon.
      spawnSync(
        'flock',
        ['-o', join(DOCKER_CACHE, 'start.lock'), 'flock', '-o', '-xn', usersLock, 'bash', SCRIPT, 'stop', DOCKER_CACHE],
        { encoding: 'utf8', timeout: 30_000 },
      );
    },
  };
}
