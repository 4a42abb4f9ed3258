/**
 * The bounded reads of src/node/commands.ts run by bash against a job folder full of traps
 * (FIFOs, links to /dev/zero, a huge line, a huge status.json), the stall verdict and deadline,
 * and printableLine.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { printableLine } from '../../src/core/format.js';
import { stallDeadlineMs, supervisorStalled } from '../../src/core/verdicts.js';
import {
  adoptCommand,
  cancelCommand,
  launchCommand,
  probeCommand,
  readLogCommand,
  sizeCommand,
  snapshotLogCommand,
  stopStalledCommand,
} from '../../src/node/commands.js';
import { parseProbe } from '../../src/node/probe.js';
import { localTransport } from '../../src/transport/local.js';
import { EXEC_OUTPUT_CAP, type RemoteCommand } from '../../src/transport/transport.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function folder(): string {
  const d = mkdtempSync(join(tmpdir(), 'gpuq-reads-'));
  dirs.push(d);
  return d;
}

/** Runs a node command with bash; fails the test past 20 s (a read that blocks). */
function run(cmd: RemoteCommand): { out: string; ms: number } {
  const start = Date.now();
  const out = execFileSync('bash', ['-c', cmd.script], {
    input: cmd.stdin ?? '',
    timeout: 20_000,
    maxBuffer: 64 * 1024 * 1024,
  }).toString('utf8');
  return { out, ms: Date.now() - start };
}

const SAMPLE = '{"t":1,"rssBytes":2,"cpuPct":3,"procs":1,"threads":1,"openFiles":3,"folderBytes":10,"gpu":null}';

describe('reads of a hostile job folder', () => {
  it('FIFOs and links read as absent, without blocking; cancel makes no FIFO write', () => {
    const d = folder();
    for (const n of ['status.json', 'monitor.json', 'samples.jsonl', 'stdout.log', 'cancel.requested'])
      execFileSync('mkfifo', [join(d, n)]);
    symlinkSync('/dev/zero', join(d, 'stderr.log'));
    writeFileSync(join(d, 'job.lock'), '');
    const probe = parseProbe(run(probeCommand(d, 'N')).out, 'N');
    expect(probe.status).toBeNull();
    expect(probe.monitor).toBeNull();
    expect(probe.recentSamples).toEqual([]);
    expect(probe.stderrTail).toBe('');
    expect(probe.supervisorAlive).toBe(false);
    expect(run(readLogCommand(d, 'stdout.log', null)).out).toBe('');
    expect(run(readLogCommand(d, 'stderr.log', 3)).out).toBe('');
    expect(run(snapshotLogCommand(d, 'stderr.log', null)).out).toBe('0\n');
    expect(run(sizeCommand(d, 'stdout.log')).out.trim()).toBe('0');
    expect(run(cancelCommand(d)).out.trim()).toBe('gone');
  });

  it('a huge line in samples.jsonl is skipped, a huge status.json is absent, a job.lock FIFO counts as alive', () => {
    const d = folder();
    writeFileSync(join(d, 'samples.jsonl'), `${SAMPLE}\n${'x'.repeat(4 * 1024 * 1024)}\n${SAMPLE}\n`);
    writeFileSync(join(d, 'status.json'), `{"state":"running",${' '.repeat(1024 * 1024)}}`);
    execFileSync('mkfifo', [join(d, 'job.lock')]);
    const { out, ms } = run(probeCommand(d, 'N'));
    expect(out.length).toBeLessThan(300 * 1024);
    expect(ms).toBeLessThan(15_000);
    const probe = parseProbe(out, 'N');
    expect(probe.recentSamples).toHaveLength(1);
    expect(probe.status).toBeNull();
    expect(probe.supervisorAlive).toBe(true);
  });

  it('the launch and the adoption never block on a status.json the job swapped for a FIFO', () => {
    // A stand-in supervisor: status.json starts, the "job" swaps a FIFO in (as a program in the job
    // folder can, before the launch has seen "running"), then the supervisor's next write replaces it.
    // A blocking open of that FIFO (read <status.json, cat, grep) never returned: submit hung.
    const d = folder();
    const fake = (final: string) =>
      'printf \'{"state":"starting"}\\n\' >status.json.tmp && mv -f status.json.tmp status.json\n' +
      'mkfifo status.json.f && mv -f status.json.f status.json\n' +
      `sleep 0.5; printf '%s\\n' '${final}' >status.json.tmp && mv -f status.json.tmp status.json\n`;
    writeFileSync(join(d, 'run.sh'), fake('{"state":"running",'));
    const launch = run(launchCommand(d));
    expect(launch.out).toBe('{"state":"running",\n');
    expect(launch.ms).toBeLessThan(15_000);
    // The adoption, with status.json a FIFO: it waits for a state, then prints what it finds.
    execFileSync('bash', ['-c', 'rm -f status.json && mkfifo status.json'], { cwd: d });
    const swap = spawn(
      'bash',
      ['-c', 'sleep 0.5; printf \'{"state":"exited",\\n\' >s.tmp && mv -f s.tmp status.json'],
      {
        cwd: d,
        stdio: 'ignore',
      },
    );
    const adopt = run(adoptCommand(d));
    swap.kill('SIGKILL');
    expect(adopt.out).toBe(`${realpathSync(d)}\n{"state":"exited",\n`);
  });

  it("cancel and the stall stop never signal a pid that is not this folder's supervisor", () => {
    const d = folder();
    mkdirSync(join(d, 'work'));
    writeFileSync(join(d, 'status.json'), `{"state":"running",\n"supervisorPid":${process.pid}}\n`);
    // A lock held by another process, as a live supervisor holds it.
    writeFileSync(join(d, 'job.lock'), '');
    const holder = spawn('bash', ['-c', 'exec 9>>job.lock && flock -x 9 && exec sleep 30'], {
      cwd: d,
      stdio: 'ignore',
    });
    const held = () => spawnSync('flock', ['-n', join(d, 'job.lock'), 'true']).status !== 0;
    for (let i = 0; i < 200 && !held(); i++) execFileSync('sleep', ['0.05']);
    expect(held()).toBe(true);
    try {
      expect(run(cancelCommand(d)).out.trim()).toBe('gone');
      const stop = run(stopStalledCommand(d, 'nosuchjob')).out;
      expect(stop).toMatch(/^supervisor none$/m);
      expect(stop).toMatch(/^killed 0$/m);
      expect(stop).toMatch(/^released no$/m); // the holder is untouched, and no time is spent waiting for it
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('the stall deadline and verdict', () => {
  it('is start + timeout + grace + max(30 s, timeout / 10); none without a start', () => {
    const at = '2026-01-01T00:00:00.000Z';
    const t0 = Date.parse(at);
    expect(stallDeadlineMs(at, { timeoutS: 10, graceS: 5 })).toBe(t0 + 15_000 + 30_000);
    expect(stallDeadlineMs(at, { timeoutS: 3600, graceS: 10 })).toBe(t0 + 3_610_000 + 360_000);
    expect(stallDeadlineMs(null, { timeoutS: 10, graceS: 5 })).toBeNull();
  });

  it("takes the node's stallMargin instead where its config sets one", () => {
    const at = '2026-01-01T00:00:00.000Z';
    const t0 = Date.parse(at);
    expect(stallDeadlineMs(at, { timeoutS: 10, graceS: 5 }, 3)).toBe(t0 + 15_000 + 3_000);
    expect(stallDeadlineMs(at, { timeoutS: 3600, graceS: 10 }, 120)).toBe(t0 + 3_610_000 + 120_000);
  });

  it('is timeout (supervisor_stalled), timed out, with no exit code claimed', () => {
    const v = supervisorStalled({
      deadlineMs: 1000,
      atMs: 6000,
      supervisor: { pid: 42, state: 'T' },
      killed: 3,
      released: true,
      timeoutS: 60,
    });
    expect(v.class).toBe('timeout');
    expect(v.cause).toBe('supervisor_stalled');
    expect(v.timedOut).toBe(true);
    expect(v.exitCode).toBeNull();
    expect(v.evidence.join(' ')).toMatch(/pid 42, state T: stopped.*5 s after/);
    expect(v.evidence.join(' ')).toMatch(/killed 3 processes/);
  });
});

describe('printableLine', () => {
  it('keeps a name on one line: no escapes, title sets, line breaks or bidi overrides', () => {
    expect(printableLine('a\u001b]0;pwned\u0007b\u001b[2Jc')).toBe('abc');
    expect(printableLine('x\ndone: succeeded\r\ty')).toBe('x done: succeeded  y');
    expect(printableLine('evil\u202etxt.py')).toBe('eviltxt.py');
    expect(printableLine('\u009b31mred')).toBe('red');
  });
});

describe('the local transport', () => {
  it('cuts a command printing past the cap, ends it and flags the result', async () => {
    const t = localTransport('local');
    const r = await t.exec({ purpose: 'flood', script: 'exec cat /dev/zero' });
    expect(r.truncated).toBe(true);
    expect(r.stdout.length).toBe(EXEC_OUTPUT_CAP);
  });

  it("pauses a stream while its handler's promise is pending, and delivers every byte", async () => {
    const t = localTransport('local');
    let bytes = 0;
    let pending = 0;
    let maxPending = 0;
    const r = await t.stream(
      { purpose: 'stream', script: 'head -c 8388608 /dev/zero' },
      {
        onStdout: (c) => {
          bytes += c.length;
          pending++;
          maxPending = Math.max(maxPending, pending);
          return new Promise<void>((resolve) =>
            setTimeout(() => {
              pending--;
              resolve();
            }, 1),
          );
        },
      },
    );
    expect(r.code).toBe(0);
    expect(bytes).toBe(8388608);
    // Paused: at most the chunk already read comes in while one is written (unpaused, ~128 would).
    expect(maxPending).toBeLessThanOrEqual(2);
  });
});
