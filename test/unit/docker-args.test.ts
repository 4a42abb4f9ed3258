/**
 * Docker isolation without a daemon: the `docker run` options as data (core/docker-args.ts), image
 * names, the node's allowed extra flags, the wrapper's rendering, and the verdicts a container's
 * evidence gives (OOMKilled, never 137 alone; read-only file system; no network).
 */
import { describe, expect, it } from 'vitest';
import { classify } from '../../src/core/classify.js';
import {
  type ContainerSpec,
  checkExtraFlag,
  containerName,
  dockerRunArgs,
  dockerRunOptions,
  graderDockerArgs,
  isImageName,
  NODE_TOKENS,
} from '../../src/core/docker-args.js';
import { renderWrapper } from '../../src/node/wrapper.js';
import { dockerLine, parseDockerProbe } from '../../src/core/docker-info.js';
import { builtinLimits } from '../../src/core/limits.js';
import { exited, LIMITS, MiB, monitor, probe } from '../helpers/classify-fixtures.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';

const spec = (over: Partial<ContainerSpec> = {}): ContainerSpec => ({
  mounts: { role: 'run', work: NODE_TOKENS.work, data: '/srv/data' },
  jobId: 'k2x9a1b3',
  submitter: 'ann@laptop',
  image: 'python:3.12-slim',
  network: false,
  memoryBytes: 512 * MiB,
  pids: 64,
  files: 1024,
  fileSizeBytes: 10 * MiB,
  cpuTimeS: null,
  graceS: 10,
  gpus: 0,
  env: { SEED: '1' },
  extraFlags: [],
  command: ['python3', 'main.py'],
  ...over,
});

describe('dockerRunOptions', () => {
  it('sets every flag the issue lists, for the run', () => {
    const o = dockerRunOptions(spec());
    for (const flag of [
      '--name=gpuq-k2x9a1b3',
      '--label=gpuq.job=k2x9a1b3',
      '--label=gpuq.submitter=ann@laptop',
      '--network=none',
      '--read-only',
      '--tmpfs=/tmp:rw,nosuid,nodev,exec,mode=1777',
      `--mount=type=bind,source=${NODE_TOKENS.work},target=/gpuq/work`,
      '--workdir=/gpuq/work',
      '--mount=type=bind,source=/srv/data,target=/gpuq/data,readonly',
      `--memory=${512 * MiB}`,
      `--memory-swap=${512 * MiB}`,
      '--pids-limit=64',
      `--cpus=${NODE_TOKENS.cpus}`,
      '--ulimit=nofile=1024:1024',
      `--ulimit=fsize=${10 * MiB}:${10 * MiB}`,
      '--ulimit=core=0:0',
      '--cap-drop=ALL',
      '--security-opt=no-new-privileges',
      `--user=${NODE_TOKENS.uid}:${NODE_TOKENS.gid}`,
      '--init',
      '--ipc=private',
      '--stop-timeout=10',
      '--env=PYTHONUNBUFFERED=1',
      '--env=GPUQ_JOB_ID=k2x9a1b3',
      `--env=OMP_NUM_THREADS=${NODE_TOKENS.threads}`,
      '--env=GPUQ_DATA=/gpuq/data',
      '--env=SEED=1',
    ])
      expect(o).toContain(flag);
    // The answers are never mounted; no GPU flag without GPUs.
    expect(o.join(' ')).not.toMatch(/answers|--gpus/);
    // gpuq's own variables come after --env: a job cannot override GPUQ_JOB_ID.
    expect(o.indexOf('--env=GPUQ_JOB_ID=k2x9a1b3')).toBeGreaterThan(o.indexOf('--env=SEED=1'));
  });

  it('adds the leased GPUs, the network where allowed, and the allowed extra flags', () => {
    const o = dockerRunOptions(spec({ gpus: 2, network: true, extraFlags: ['--shm-size=2g'], memoryBytes: null }));
    expect(o).toContain(`--gpus="device=${NODE_TOKENS.gpus}"`);
    expect(o).toContain('--env=CUDA_DEVICE_ORDER=PCI_BUS_ID');
    expect(o).toContain('--shm-size=2g');
    expect(o.join(' ')).not.toMatch(/--network|--memory/);
  });

  it('quotes a mount path holding a comma, so it stays one field', () => {
    const o = dockerRunOptions(spec({ mounts: { role: 'run', work: '/w', data: '/srv/a,b"c' } }));
    expect(o).toContain('--mount=type=bind,"source=/srv/a,b""c",target=/gpuq/data,readonly');
  });

  it("grade.py's --docker: the grading folder and home left to the node, no network, swap equal, no pull", () => {
    const [flag, json] = graderDockerArgs({
      jobId: 'k2x9a1b3',
      submitter: 'ann@laptop',
      image: 'grader:1',
      answers: '~/comp/answers',
      memoryBytes: 64 * MiB,
      pids: 32,
      docker: ['docker'],
      extraFlags: ['--shm-size=1g'],
      keep: false,
    });
    expect(flag).toBe('--docker');
    const d = JSON.parse(json as string);
    expect(d).toMatchObject({ command: ['docker'], image: 'grader:1', name: 'gpuq-k2x9a1b3-grade', keep: false });
    expect(d.options).toContain('--pull=never');
    expect(d.options).toContain('--network=none');
    expect(d.options).toContain(`--memory=${64 * MiB}`);
    expect(d.options).toContain(`--memory-swap=${64 * MiB}`);
    expect(d.options).toContain('--pids-limit=32');
    expect(d.options).toContain('--shm-size=1g');
    expect(d.options).toContain('--mount=type=bind,source=@GPUQ_GRADING@/submission,target=/gpuq/submission,readonly');
    expect(d.options).toContain('--mount=type=bind,source=@GPUQ_HOME@/comp/answers,target=/gpuq/answers,readonly');
    expect(d.options).toContain('--mount=type=bind,source=@GPUQ_GRADING@/feedback,target=/gpuq/feedback');
    const none = JSON.parse(
      graderDockerArgs({
        ...JSON.parse('{}'),
        jobId: 'a',
        submitter: 's',
        image: 'i',
        answers: null,
        memoryBytes: 1,
        pids: null,
        docker: ['docker'],
        extraFlags: [],
        keep: true,
      })[1] as string,
    );
    expect(none.options.join(' ')).not.toMatch(/gpuq\/answers/);
  });

  it('grades in a fresh container: submission and answers read-only, feedback writable', () => {
    const o = dockerRunOptions(
      spec({ mounts: { role: 'grade', submission: '/j/work/sub.csv', answers: '/srv/ans', feedback: '/j/fb' } }),
    );
    expect(o).toContain(`--name=${containerName('k2x9a1b3', 'grade')}`);
    expect(o).toContain('--mount=type=bind,source=/j/work/sub.csv,target=/gpuq/submission,readonly');
    expect(o).toContain('--mount=type=bind,source=/srv/ans,target=/gpuq/answers,readonly');
    expect(o).toContain('--mount=type=bind,source=/j/fb,target=/gpuq/feedback');
    expect(o.join(' ')).not.toMatch(/gpuq\/work|GPUQ_DATA/);
  });

  it('ends with the image, then the command', () => {
    const a = dockerRunArgs(spec());
    expect(a[0]).toBe('run');
    expect(a.slice(-3)).toEqual(['python:3.12-slim', 'python3', 'main.py']);
  });
});

describe('image names and extra flags', () => {
  it.each([
    ['python:3.12-slim', true],
    ['gpuq-test:bookworm', true],
    ['registry.example.org:5000/team/img:v1', true],
    [`img@sha256:${'a'.repeat(64)}`, true],
    ['Bad Image', false],
    ['--privileged', false],
    ['UPPER/case', false],
    ['', false],
  ])('%s is a name: %s', (name, ok) => expect(isImageName(name)).toBe(ok));

  it('allows only the fixed list of extra flags', () => {
    expect(checkExtraFlag('--shm-size=8g')).toBeNull();
    expect(checkExtraFlag('--runtime=nvidia')).toBeNull();
    expect(checkExtraFlag('--ulimit=memlock=-1:-1')).toBeNull();
    expect(checkExtraFlag('--privileged')).toMatch(/not one of the allowed/);
    expect(checkExtraFlag('--volume=/:/host')).toMatch(/not one of the allowed/);
    expect(checkExtraFlag('--ulimit=nproc=99999')).toMatch(/value/);
    expect(checkExtraFlag('--shm-size')).toMatch(/value/);
  });
});

describe('the wrapper under Docker', () => {
  it('renders the container variables, and the host ones without a container', () => {
    const template = readFileSync(join(REPO, 'templates', 'wrapper.sh'), 'utf8');
    const base = {
      jobId: 'k2x9a1b3',
      command: ['python3', 'main.py'],
      env: {},
      limits: builtinLimits(),
      cpuShare: { num: 1, den: 1 },
      cudaDevices: null,
      useCgroups: false,
    };
    const w = renderWrapper(template, {
      ...base,
      docker: { command: ['docker'], image: 'img:1', options: ['--init'], container: 'gpuq-k2x9a1b3', keep: false },
    });
    expect(w).toContain('ISOLATION=docker');
    expect(w).toContain('DOCKER_OPTS=(--init)');
    expect(renderWrapper(template, base)).toContain('ISOLATION=ulimit');
  });
});

describe('verdicts from a container', () => {
  const input = (status: ReturnType<typeof exited>, stderr = '') => ({
    probe: probe(status, stderr, { monitor: monitor({ peakRssBytes: 20 * MiB }) }),
    limits: { ...LIMITS, memoryBytes: 128 * MiB },
    cancelRequested: false,
    launchBootId: 'boot-a',
    node: 'gpu1',
    jobId: 'k2x9a1b3',
  });

  it('OOMKilled (folded into the OOM count) is oom; exit 137 alone is not', () => {
    const oom = classify(
      input(exited(137, { boundary: 'container', oomKills: 1, containerOomKilled: true, cgroup: 'v1' })),
    );
    expect(oom.class).toBe('oom');
    const bare = classify(input(exited(137, { boundary: 'container', oomKills: 0, containerOomKilled: false })));
    expect(bare.class).toBe('signaled');
  });

  it('names a write to the read-only file system, with a hint', () => {
    const v = classify(
      input(
        exited(1, { boundary: 'container' }),
        'Traceback (most recent call last):\n  File "/gpuq/work/a.py", line 1, in <module>\nOSError: [Errno 30] Read-only file system: \'/gpuq/data/x\'\n',
      ),
    );
    expect(v.cause).toBe('read_only_fs');
    expect(v.hints.join(' ')).toMatch(/read-only/);
  });

  it('names the missing network in a container only', () => {
    const tb =
      'Traceback (most recent call last):\n  File "/gpuq/work/a.py", line 3, in <module>\nOSError: [Errno 101] Network is unreachable\n';
    const v = classify(input(exited(1, { boundary: 'container' }), tb));
    expect(v.cause).toBe('no_network');
    expect(v.hints.join(' ')).toMatch(/no network/);
    expect(classify(input(exited(1, { boundary: 'uid' }), tb)).cause).not.toBe('no_network');
  });
});

describe('gpuq nodes: Docker on a node', () => {
  it('reads version, cgroups and rootless, and the containers it removed', () => {
    const d = parseDockerProbe(
      'rc 0\n20.10.24+dfsg1\t2\tsystemd\t["name=seccomp,profile=default","name=cgroupns"]\nremoved gpuq-k2x9a1b3\n',
      'docker',
    );
    expect(d).toMatchObject({ usable: true, version: '20.10.24+dfsg1', cgroupVersion: '2', cgroupDriver: 'systemd' });
    expect(d?.rootless).toBe(false);
    expect(d?.removed).toEqual(['gpuq-k2x9a1b3']);
    expect(dockerLine(d as NonNullable<typeof d>)).toBe(
      'docker 20.10.24+dfsg1, cgroup v2 (systemd), rootful; removed 1 container(s) of dead jobs',
    );
  });

  it('refuses rootless on cgroup v1, and says why a daemon cannot be used', () => {
    const rootless = parseDockerProbe('rc 0\n24.0.7\t1\tcgroupfs\t["name=seccomp","name=rootless"]\n', 'docker');
    expect(rootless).toMatchObject({ usable: false, rootless: true });
    expect(rootless?.reason).toMatch(/rootless Docker on cgroup v1/);
    const denied = parseDockerProbe(
      'rc 1\nGot permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock\n',
      'docker',
    );
    expect(denied?.reason).toMatch(/docker group/);
    expect(parseDockerProbe('rc 1\nCannot connect to the Docker daemon at unix:///x.sock\n', 'docker')?.reason).toMatch(
      /does not answer/,
    );
    expect(parseDockerProbe('absent\n', 'docker')).toBeNull();
  });
});
