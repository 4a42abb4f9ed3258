/**
 * The launch protocol over a real SSH connection: one round trip for a small program, and
 * adoptLaunch, which tells after a dropped link whether the supervisor had started.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adoptLaunch, launchJob, waitForEnd } from '../../src/node/protocol.js';
import { renderWrapper } from '../../src/node/wrapper.js';
import { connectSsh } from '../../src/transport/ssh.js';
import type { Transport } from '../../src/transport/transport.js';
import { builtinLimits } from '../../src/core/limits.js';
import { REPO, writeProgram } from '../helpers/cli.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

let sshd: Sshd;
let t: Transport;
let kh: string;

beforeAll(async () => {
  sshd = await startSshd();
  kh = join(sshd.dir, 'gpuq_known_hosts');
  await sshd.writeKnownHosts(kh, 'right');
  t = await connectSsh(sshd.nodeConfig({ workdir: `~/gpuq-${sshd.port}` }), {
    knownHostsPath: kh,
    sshConfigFile: sshd.sshConfigPath,
  });
});
afterAll(async () => {
  await t?.close();
  await sshd?.cleanup();
});

function wrapper(jobId: string): string {
  return renderWrapper(readFileSync(join(REPO, 'templates', 'wrapper.sh'), 'utf8'), {
    jobId,
    command: ['python3', 'p.py'],
    env: {},
    limits: {
      ...builtinLimits(),
      timeoutS: 60,
      graceS: 2,
      memoryBytes: null,
      pids: null,
      files: null,
      fileSizeBytes: null,
    },
    cpuShare: { num: 1, den: 1 },
    cudaDevices: null,
    useCgroups: true,
  });
}

describe('launch over SSH', () => {
  it('starts a small program in one round trip, then adoptLaunch finds it started', async () => {
    const prog = await writeProgram('p.py', 'print("launched")\n');
    const dir = `~/gpuq-${sshd.port}/jobs/launch1`;
    let execs = 0;
    const counting: Transport = {
      ...t,
      node: t.node,
      exec: (c) => {
        execs++;
        return t.exec(c);
      },
      stream: (c, h) => t.stream(c, h),
      upload: (...a) => t.upload(...a),
      close: () => t.close(),
    };
    const started = await launchJob(
      counting,
      {
        dir,
        localProgram: prog,
        programName: 'work/p.py',
        executable: false,
        wrapper: wrapper('launch1'),
        monitor: readFileSync(join(REPO, 'templates', 'monitor.py'), 'utf8'),
      },
      () => undefined,
    );
    expect(execs).toBe(1);
    expect(started.dir).toMatch(new RegExp(`^/.*/gpuq-${sshd.port}/jobs/launch1$`));
    expect(started.status.supervisorPid).toBeGreaterThan(0);
    const adopted = await adoptLaunch(t, dir);
    expect(adopted?.dir).toBe(started.dir);
    expect(adopted?.status.supervisorPid).toBe(started.status.supervisorPid);
    const end = await waitForEnd(t, started.dir);
    expect(end?.status?.exitCode).toBe(0);
  });

  it('adoptLaunch says nothing started for a missing folder or one without a supervisor', async () => {
    expect(await adoptLaunch(t, `~/gpuq-${sshd.port}/jobs/never`)).toBeNull();
    await t.exec({ purpose: 'make an empty job folder', script: `mkdir -p ~/gpuq-${sshd.port}/jobs/empty/work` });
    expect(await adoptLaunch(t, `~/gpuq-${sshd.port}/jobs/empty`)).toBeNull();
  });
});
