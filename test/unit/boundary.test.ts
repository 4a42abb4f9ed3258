/**
 * The trust boundary's pieces that need no job: the config fields, the node probe's line, the
 * local node's environment filter, and the supervisor's refusal to start a program that must run
 * behind a boundary where it gets none (test/integration/boundary.test.ts runs the attacks).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { parseNodeStatus } from '../../src/node/node-status.js';
import { renderWrapper } from '../../src/node/wrapper.js';
import { nodeEnv } from '../../src/transport/local.js';
import { REPO } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
function load(config: unknown) {
  const dir = tempDir('gpuq-cfg-');
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return loadConfig({ env: { GPUQ_HOME: dir }, cwd: dir });
}

describe('config', () => {
  it('defaults: boundary auto, a per-job uid, competitions require a boundary', async () => {
    const c = await load({ nodes: { n: { transport: 'local' } }, competitions: { x: {} } });
    expect(c.nodes.n).toMatchObject({ boundary: 'auto', runAs: null });
    expect(c.competitions.x?.requireBoundary).toBe(true);
  });
  it('takes boundary none, a runAs account and requireBoundary false', async () => {
    const c = await load({
      nodes: { n: { transport: 'local', boundary: 'none', runAs: 'gpuqjob' } },
      competitions: { x: { requireBoundary: false } },
    });
    expect(c.nodes.n).toMatchObject({ boundary: 'none', runAs: 'gpuqjob' });
    expect(c.competitions.x?.requireBoundary).toBe(false);
  });
  it('refuses an unknown boundary and runAs root, naming the field', async () => {
    await expect(load({ nodes: { n: { transport: 'local', boundary: 'maybe' } } })).rejects.toThrow(
      /nodes\.n\.boundary: expected "auto" or "none"/,
    );
    await expect(load({ nodes: { n: { transport: 'local', runAs: 'root' } } })).rejects.toThrow(
      /nodes\.n\.runAs: expected an unprivileged user/,
    );
  });
});

describe('the node probe', () => {
  it('reads the boundary a node gives, and nothing it does not know', () => {
    expect(parseNodeStatus('boundary uid\n').boundary).toBe('uid');
    expect(parseNodeStatus('boundary userns\n').boundary).toBe('userns');
    expect(parseNodeStatus('boundary none\n').boundary).toBe('none');
    expect(parseNodeStatus('boundary sandbox\n').boundary).toBe(null);
    expect(parseNodeStatus('host x\n').boundary).toBe(null);
  });
});

describe('the local node environment', () => {
  it('keeps the account, PATH and locale; drops the agent socket, tokens and GPUQ_HOME', () => {
    const env = nodeEnv({
      PATH: '/usr/bin',
      HOME: '/home/u',
      USER: 'u',
      LANG: 'en_US.UTF-8',
      LC_TIME: 'C',
      SSH_AUTH_SOCK: '/tmp/agent',
      AWS_SECRET_ACCESS_KEY: 'k',
      GPUQ_HOME: '/g',
      GITHUB_TOKEN: 't',
    });
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/home/u', USER: 'u', LANG: 'en_US.UTF-8', LC_TIME: 'C' });
  });
});

describe('the supervisor', () => {
  it('refuses to start a program that requires a boundary where it has none: exit 3, no status', () => {
    const dir = tempDir('gpuq-refuse-');
    mkdirSync(join(dir, 'work'));
    writeFileSync(join(dir, 'work', 'prog.py'), 'open("ran", "w").write("yes")\n');
    const script = renderWrapper(readFileSync(join(REPO, 'templates', 'wrapper.sh'), 'utf8'), {
      jobId: 'refuse01',
      command: [existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', 'prog.py'],
      env: {},
      limits: {
        timeoutS: 20,
        graceS: 1,
        memoryBytes: null,
        pids: null,
        files: null,
        fileSizeBytes: null,
        cpuTimeS: null,
        gpus: 0,
      },
      cpuShare: { num: 1, den: 1 },
      cudaDevices: null,
      useCgroups: false,
      boundary: 'none',
      requireBoundary: true,
    });
    writeFileSync(join(dir, 'run.sh'), script, { mode: 0o700 });
    let code = 0;
    try {
      execFileSync('bash', ['./run.sh'], { cwd: dir, stdio: 'pipe', timeout: 30_000 });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(3);
    expect(existsSync(join(dir, 'boundary.refused'))).toBe(true);
    expect(existsSync(join(dir, 'status.json'))).toBe(false);
    expect(existsSync(join(dir, 'work', 'ran'))).toBe(false);
  });
});
