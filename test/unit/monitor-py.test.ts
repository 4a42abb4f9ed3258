/**
 * The pure parts of templates/monitor.py (the node-side sampler, memory watch and sweep), run in
 * python3: /proc parsing, nvidia-smi CSV parsing from outputs in the documented
 * `--format=csv,noheader[,nounits]` shape (with the N/A and permission cells drivers print),
 * GPU attribution to the job's pids, CPU percentages, peaks, the sampling cadence, the
 * subreaper descendant walk, folder sizes; and one live check that the sweep finds and kills a
 * process by its marker. Each python call loads monitor.py from the template itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

const MONITOR = join(REPO, 'templates', 'monitor.py');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Runs `code` with the monitor module loaded as `m`; the code prints one JSON document. */
function py<T = unknown>(code: string, input = ''): T {
  const script = [
    'import importlib.util, json, os, sys',
    `spec = importlib.util.spec_from_file_location("monitor", ${JSON.stringify(MONITOR)})`,
    'm = importlib.util.module_from_spec(spec)',
    'spec.loader.exec_module(m)',
    'def out(x): print(json.dumps(x))',
    code,
  ].join('\n');
  return JSON.parse(execFileSync(PYTHON, ['-c', script], { encoding: 'utf8', input })) as T;
}

const MIB = 1024 * 1024;
const UUID0 = 'GPU-8f6f3f4b-8c1e-2d5a-9b0a-7c3e1f2d4a5b';
const UUID1 = 'GPU-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d';

/** `nvidia-smi --query-gpu=index,uuid,memory.used,utilization.gpu --format=csv,noheader,nounits`. */
const QUERY_GPU_NOUNITS = `0, ${UUID0}, 10240, 87\n1, ${UUID1}, 0, 0\n`;
/** The same with units (`--format=csv,noheader`). */
const QUERY_GPU_UNITS = `0, ${UUID0}, 10240 MiB, 87 %\n1, ${UUID1}, 3 MiB, 0 %\n`;
/** A MIG or vGPU board: utilisation is not reported. */
const QUERY_GPU_NA = `0, ${UUID0}, 512, [N/A]\n1, ${UUID1}, [Not Supported], [Not Supported]\n`;
/** `--query-compute-apps=pid,used_memory,gpu_uuid --format=csv,noheader,nounits`. */
const APPS = `4242, 10200, ${UUID0}\n4243, 30, ${UUID0}\n777, 2048, ${UUID1}\n`;
/** In a container without the host's pid namespace, memory reads as a permission cell. */
const APPS_NO_PERMISSION = `4242, [Insufficient Permissions], ${UUID0}\n`;

describe('monitor.py: nvidia-smi parsing', () => {
  it('parses --query-gpu with and without units, sorted by index, memory in bytes', () => {
    expect(py('out(m.parse_gpus(sys.stdin.read()))', QUERY_GPU_NOUNITS)).toEqual([
      { index: 0, uuid: UUID0, mem: 10240 * MIB, util: 87 },
      { index: 1, uuid: UUID1, mem: 0, util: 0 },
    ]);
    const units = py<unknown[]>('out(m.parse_gpus(sys.stdin.read()))', QUERY_GPU_UNITS);
    expect(units).toEqual([
      { index: 0, uuid: UUID0, mem: 10240 * MIB, util: 87 },
      { index: 1, uuid: UUID1, mem: 3 * MIB, util: 0 },
    ]);
  });

  it('reads [N/A] and [Not Supported] cells as unknown, not as zero or an error', () => {
    expect(py('out(m.parse_gpus(sys.stdin.read()))', QUERY_GPU_NA)).toEqual([
      { index: 0, uuid: UUID0, mem: 512 * MIB, util: null },
      { index: 1, uuid: UUID1, mem: 0, util: null },
    ]);
  });

  it('skips what is not a row: blank lines, error text, a header', () => {
    const text = `index, uuid, memory.used [MiB], utilization.gpu [%]\n\nNo devices were found\n${QUERY_GPU_NOUNITS}`;
    expect(py<unknown[]>('out(m.parse_gpus(sys.stdin.read()))', text)).toHaveLength(2);
    expect(
      py(
        'out(m.parse_gpus(sys.stdin.read()))',
        'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.\n',
      ),
    ).toEqual([]);
    expect(py('out(m.parse_apps(sys.stdin.read()))', '')).toEqual([]);
  });

  it('parses --query-compute-apps; an unreadable memory cell is None', () => {
    expect(py('out(m.parse_apps(sys.stdin.read()))', APPS)).toEqual([
      [4242, 10200 * MIB, UUID0],
      [4243, 30 * MIB, UUID0],
      [777, 2048 * MIB, UUID1],
    ]);
    expect(py('out(m.parse_apps(sys.stdin.read()))', APPS_NO_PERMISSION)).toEqual([[4242, null, UUID0]]);
  });

  it('attributes per-process GPU memory to the job by its pids and uuid, per visible GPU', () => {
    const code = `
gpus = m.parse_gpus(${JSON.stringify(QUERY_GPU_NOUNITS)})
apps = m.parse_apps(${JSON.stringify(APPS)})
out({
  "all": m.gpu_sample((gpus, apps), None, {4242: 1, 4243: 1}),
  "only1": m.gpu_sample((gpus, apps), ["1"], {4242: 1}),
  "byUuid": m.gpu_sample((gpus, apps), ["GPU-1a2b"], {777: 1}),
  "noApps": m.gpu_sample((gpus, None), None, {4242: 1}),
  "none": m.gpu_sample(None, None, {}),
})`;
    const r = py<Record<string, unknown>>(code);
    expect(r.all).toEqual([
      { index: 0, memUsedBytes: 10240 * MIB, utilPct: 87, jobMemBytes: 10230 * MIB },
      { index: 1, memUsedBytes: 0, utilPct: 0, jobMemBytes: 0 },
    ]);
    expect(r.only1).toEqual([{ index: 1, memUsedBytes: 0, utilPct: 0, jobMemBytes: 0 }]);
    expect(r.byUuid).toEqual([{ index: 1, memUsedBytes: 0, utilPct: 0, jobMemBytes: 2048 * MIB }]);
    expect(r.noApps).toEqual([
      { index: 0, memUsedBytes: 10240 * MIB, utilPct: 87, jobMemBytes: null },
      { index: 1, memUsedBytes: 0, utilPct: 0, jobMemBytes: null },
    ]);
    expect(r.none).toBe(null);
  });

  it('reads CUDA_VISIBLE_DEVICES: unset = all, -1/empty/NoDevFiles = none, else the tokens', () => {
    const r = py('out([m.visible_devices(v) for v in (None, "", "-1", "NoDevFiles", "0, 2", "GPU-8f6f")])');
    expect(r).toEqual([null, [], [], [], ['0', '2'], ['GPU-8f6f']]);
  });
});

describe('monitor.py: /proc and measurements', () => {
  it('parses /proc/PID/stat, also when the command name holds spaces and parentheses', () => {
    const line =
      '6489 (my (odd) prog) S 6487 6480 4125 0 -1 4194304 97 0 0 0 150 50 7 3 20 0 4 ' +
      '0 454274 3133440 356 18446744073709551615 ' +
      '1 2 3 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 4 5 6 140732310887138 140732310887158 140732310887158 140732310888427 0';
    const r = py<Record<string, unknown>>(
      `st = m.parse_stat(6489, sys.stdin.read().encode())\nout({k: getattr(st, k) for k in m.ProcStat.__slots__})`,
      line,
    );
    expect(r).toEqual({
      pid: 6489,
      state: 'S',
      ppid: 6487,
      pgrp: 6480,
      session: 4125,
      cpu_ticks: 200,
      child_ticks: 10,
      threads: 4,
      starttime: 454274,
      rss_pages: 356,
      env_key: [140732310887158, 140732310888427],
    });
    expect(py('out(m.parse_stat(1, b"1 (x) S 0"))')).toBe(null);
  });

  it('reads its own stat from /proc', () => {
    const r = py<{ pid: number; self: number; threads: number }>(
      'st = m.read_stat(os.getpid())\nout({"pid": st.pid, "self": os.getpid(), "threads": st.threads})',
    );
    expect(r.pid).toBe(r.self);
    expect(r.threads).toBeGreaterThanOrEqual(1);
  });

  it('computes CPU percent from tick deltas, discounting a dead child its parent reaped', () => {
    const code = `
def st(pid, ppid, cpu, child=0):
    s = m.ProcStat(); s.pid = pid; s.ppid = ppid; s.cpu_ticks = cpu; s.child_ticks = child; s.starttime = pid
    return s
meter = m.CpuMeter(100)
first = meter.update({10: st(10, 1, 100), 11: st(11, 10, 50)}, 0.0)
# 1 s later: the parent used 50 ticks and reaped the child (its 80 ticks show up as child time).
second = meter.update({10: st(10, 1, 150, 80)}, 1.0)
out([first, second])`;
    // parent +50 own, +80 children; the child (50 ticks already counted) is gone: 130 - 50 = 80 ticks.
    expect(py(code)).toEqual([null, 80]);
  });

  it('keeps peaks and writes monitor.json with every field', () => {
    const code = `
p = m.Peaks(None)
s = {"rssBytes": 5, "procs": 2, "threads": 3, "openFiles": 4, "folderBytes": 9, "gpu": [{"memUsedBytes": 7}]}
a = p.add(s)
b = p.add(dict(s, rssBytes=1))
c = p.add(dict(s, rssBytes=6, gpu=None))
out([a, b, c, json.loads(p.to_json())])`;
    const [a, b, c, doc] = py<[boolean, boolean, boolean, Record<string, unknown>]>(code);
    expect([a, b, c]).toEqual([true, false, true]);
    expect(doc).toEqual({
      version: 1,
      samples: 3,
      peakRssBytes: 6,
      peakProcs: 2,
      peakThreads: 3,
      peakOpenFiles: 4,
      peakFolderBytes: 9,
      peakGpuMemBytes: 7,
      memoryWatchFired: false,
      memoryWatchRssBytes: null,
      firstOomKillAtMs: null,
      cpuLimitHit: null,
    });
  });

  it('reads the oom_kill counter of a v2 (memory.events) and a v1 (memory.oom_control) memory cgroup', () => {
    const code = `
import tempfile
v2 = tempfile.mkdtemp(); v1 = tempfile.mkdtemp(); none = tempfile.mkdtemp()
open(os.path.join(v2, "memory.events"), "w").write("low 0\\nhigh 0\\nmax 4\\noom 2\\noom_kill 2\\noom_group_kill 0\\n")
open(os.path.join(v1, "memory.oom_control"), "w").write("oom_kill_disable 0\\nunder_oom 0\\noom_kill 1\\n")
out([m.read_oom_kills(v2), m.read_oom_kills(v1), m.read_oom_kills(none)])`;
    expect(py(code)).toEqual([2, 1, null]);
  });

  it('names the process that vanished at the per-process CPU-time limit, and not one that ended early', () => {
    const code = `
def st(pid, ticks, threads=1, state="R", start=None):
    s = m.ProcStat(); s.pid = pid; s.cpu_ticks = ticks; s.threads = threads; s.state = state
    s.starttime = start if start is not None else pid
    return s
# 1 s limit, 100 ticks a second (margin: 0.1 s x threads + 2 ticks + 15% of the limit for the
# kernel's tick charging). Pids far above any real pid_max: a re-read finds them gone.
w = m.CpuLimitWatch(1, 100)
w.observe(4000001, st(4000001, 30))      # the parent, 0.3 s
w.observe(4000002, st(4000002, 55))      # a child past half the limit: hot
hot = w.hot()
w.observe(4000002, st(4000002, 80))      # last seen at 0.8 s
w.sweep_gone({4000001: None})            # the child is gone
first = w.hit
# A child that ends at 0.6 s of a 1 s limit was not stopped by it.
e = m.CpuLimitWatch(1, 100)
e.observe(4000003, st(4000003, 60))
e.tick()
early = e.hit
# Seen as a zombie at the limit: its final time decides.
z = m.CpuLimitWatch(1, 100)
z.observe(4000004, st(4000004, 90, state="Z"))
zombie = z.hit
# Many threads: a 4-thread process last seen at 0.5 s may have burnt 0.4 s more before the next tick.
t = m.CpuLimitWatch(1, 100)
t.observe(4000005, st(4000005, 50, threads=4))
t.tick()
threads = t.hit
# A reused pid (another start time) ends the old process's record.
r = m.CpuLimitWatch(1, 100)
r.observe(4000006, st(4000006, 95))
r.observe(4000006, st(4000006, 1, start=1))
reused = r.hit
# A monitor delayed 0.4 s on a loaded node: the process may have used 0.4 s since it was seen at 0.5 s.
d = m.CpuLimitWatch(1, 100)
d.observe(4000007, st(4000007, 50), now=10.0)
d.recheck(4000007, now=10.4)
delayed = d.hit
# The allowance stops at MAX_UNSEEN_S (0.5 s): one seen at 0.3 s and missed for 5 s ended on its own.
g = m.CpuLimitWatch(1, 100)
g.observe(4000008, st(4000008, 30), now=10.0)
g.recheck(4000008, now=15.0)
out([hot, first, early, zombie["cpuSeconds"], threads["pid"], reused["pid"], delayed["pid"], g.hit])`;
    const [hot, first, early, zombie, threads, reused, delayed, unseen] =
      py<[number[], Record<string, unknown>, null, number, number, number, number, null]>(code);
    expect(hot).toEqual([4000002]);
    expect(first).toEqual({ pid: 4000002, name: '?', cpuSeconds: 0.8 });
    expect(early).toBeNull();
    expect(zombie).toBe(0.9);
    expect(threads).toBe(4000005);
    expect(reused).toBe(4000006);
    expect(delayed).toBe(4000007);
    expect(unseen).toBeNull();
  });

  it('samples fast at first, then at about 1 Hz', () => {
    expect(py('out([m.cadence_for(t) for t in (0, 0.5, 1.5, 3.9, 4, 100)])')).toEqual([0.1, 0.1, 0.25, 0.25, 1, 1]);
  });

  it('finds orphans under the subreaper supervisor, but not its helpers in its own session', () => {
    const code = `
def st(pid, ppid, session):
    s = m.ProcStat(); s.pid = pid; s.ppid = ppid; s.session = session
    return s
SUP = 100
candidates = {
    101: st(101, SUP, SUP),    # the timer subshell (the supervisor's session)
    102: st(102, 101, SUP),    # its sleep
    103: st(103, SUP, 103),    # an orphan that called setsid and cleared its environment
    104: st(104, 103, 103),    # its child
    105: st(105, 1, 105),      # somebody else's process
    107: st(107, 106, 106),    # a child of the monitor (nvidia-smi), excluded
}
members = {110: st(110, SUP, 110)}   # the job's main process
out(sorted(m.descendants(SUP, candidates, members, {106, SUP, 1}, SUP)))`;
    expect(py(code)).toEqual([103, 104]);
  });

  it('walks the live tree from the known pids: the job and its children, by /proc', () => {
    const code = `
import subprocess
os.setsid()  # as the job's main process is: a session of its own
child = subprocess.Popen(["sleep", "30"])
try:
    finder = m.TreeFinder(os.getpid(), "walk-test", [], set())
    members, job_st = finder.walk({})
    full, _ = finder.scan()
    out({"walk": sorted(members), "full": sorted(full), "me": os.getpid(), "child": child.pid, "job": job_st.pid})
finally:
    child.kill()
    child.wait()`;
    const r = py<{ walk: number[]; full: number[]; me: number; child: number; job: number }>(code);
    expect(r.walk).toEqual(expect.arrayContaining([r.me, r.child]));
    expect(r.full).toEqual(expect.arrayContaining([r.me, r.child]));
    expect(r.job).toBe(r.me);
  });

  it('reads Pss from smaps_rollup, and its own', () => {
    const rollup =
      '5566c6ff4000-7ffd91213000 ---p 00000000 00:00 0  [rollup]\nRss:  1704 kB\nPss:  216 kB\nPss_Dirty: 112 kB\n';
    expect(py('out(m.parse_pss(sys.stdin.read()))', rollup)).toBe(216 * 1024);
    expect(py('out(m.parse_pss("Rss: 1 kB"))')).toBe(null);
    expect(py<number>('out(m.tree_pss([os.getpid()]))')).toBeGreaterThan(0);
  });

  it('measures a folder like du -sb, counting hard links once', () => {
    const code = `
import tempfile
d = tempfile.mkdtemp()
os.mkdir(os.path.join(d, "sub"))
open(os.path.join(d, "a"), "wb").write(b"x" * 1000)
open(os.path.join(d, "sub", "b"), "wb").write(b"y" * 24)
os.link(os.path.join(d, "a"), os.path.join(d, "sub", "a2"))
size = m.folder_size(d)
import shutil; shutil.rmtree(d)
out(size)`;
    expect(py(code)).toBe(1024);
  });
});

describe('monitor.py: its own JSON writer and option parser (no json, no argparse import)', () => {
  it('writes JSON exactly as json.dumps(separators=(",", ":")) does, hostile text included', () => {
    const code = `
values = [None, True, False, 0, -7, 2**70, 0.1, -0.0, 1e300, 12.5, float("nan"), float("inf"), float("-inf"),
          "", "plain", 'q"b\\\\s/', "\\n\\r\\t\\b\\f\\x00\\x1f\\x7f", "\\u00e9\\u2028\\ud800", "\\U0001f600",
          [], {}, [1, [2, {"a": None}]], {"t": 1, "gpu": [{"index": 0, "utilPct": None}], "cpuPct": 3.5},
          {1: "int key", 2.5: "float key", True: "bool key", None: "none key"}, (1, "tuple")]
out([[m.json_text(v), json.dumps(v, separators=(",", ":"))] for v in values])`;
    for (const [mine, theirs] of py<[string, string][]>(code)) expect(mine).toBe(theirs);
  });

  it('parses its fixed options as argparse did, and refuses bad ones with its messages', () => {
    const code = `
def run(argv):
    try:
        a = m.parse_command(argv)
        return dict((k, v) for k, v in vars(a).items())
    except m.UsageError as e:
        return "error: " + str(e)
    except m.HelpRequested as e:
        return "help: %s" % e.command
out([run(a) for a in (
    ["sweep", "--job-id", "j", "--pid", "42", "--signal=TERM", "--cgroup-pids", "/a b"],
    ["watch", "--dir=d", "--job-id", "j", "--pid", "1", "--watch-interval", "0.5", "--requests", "--pid", "2"],
    [], ["nope"], ["sweep", "--pid", "x", "--job-id", "j"], ["sweep", "--job-id", "j"],
    ["sweep", "--job-id", "j", "--pid", "1", "--signal", "KILL"], ["sweep", "--job-id", "j", "--pid"],
    ["sweep", "--job-id", "j", "--pid", "1", "extra"], ["watch", "--requests=yes"], ["--help"], ["sweep", "-h"],
)])`;
    const r = py<unknown[]>(code);
    expect(r[0]).toEqual({
      command: 'sweep',
      job_id: 'j',
      pid: 42,
      signal: 'TERM',
      cgroup_pids: '/a b',
      cgroup_memory: null,
      supervisor: null,
    });
    expect(r[1]).toMatchObject({ command: 'watch', dir: 'd', pid: 2, watch_interval: 0.5, requests: true });
    expect(r[1]).toMatchObject({ memory_bytes: null, cgroup_root: '/sys/fs/cgroup', cpu_time_s: null, gpus: null });
    expect(r.slice(2)).toEqual([
      'error: the following arguments are required: command',
      "error: argument command: invalid choice: 'nope' (choose from 'watch', 'sweep')",
      "error: argument --pid: invalid int value: 'x'",
      'error: the following arguments are required: --pid',
      "error: argument --signal: invalid choice: 'KILL' (choose from 'TERM', 'INT', 'HUP')",
      'error: argument --pid: expected one argument',
      'error: unrecognized arguments: extra',
      "error: argument --requests: ignored explicit argument 'yes'",
      'help: None',
      'help: sweep',
    ]);
    // On the command line: the usage and the error on stderr, exit 2.
    let failure: { status?: number; stderr?: string } = {};
    try {
      execFileSync(PYTHON, [MONITOR, 'sweep', '--pid', '1'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      failure = e as { status?: number; stderr?: string };
    }
    expect(failure.status).toBe(2);
    expect(failure.stderr).toMatch(
      /^usage: monitor\.py sweep --job-id JOB_ID --pid PID .*\nmonitor\.py: error: the following arguments are required: --job-id\n$/,
    );
  });

  it('takes a sweep request only as a whole `sweep` line; the channel closes at its end', () => {
    const code = `
r, w = os.pipe()
req = m.Requests(r)
seen = []
for chunk in (b"swe", b"ep", b"ing\\nhello\\n", b"sw", b"eep\\n"):
    os.write(w, chunk)
    req.read()
    seen.append(req.sweep)
os.close(w)
req.read()
r2, w2 = os.pipe()
eof = m.Requests(r2)
os.close(w2)
eof.read()
out([seen, req.closed, eof.closed, eof.sweep])`;
    expect(py(code)).toEqual([[false, false, false, false, true], true, true, false]);
  });
});

describe('monitor.py: sweep', () => {
  it('kills a detached process that carries the marker and counts it', async () => {
    const jobId = `sweeptest${process.pid}`;
    // A process in its own session with the marker: what an escapee of a job looks like.
    const child = spawn('sleep', ['30'], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, GPUQ_JOB_ID: jobId },
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    // A bystander like it, but of another job: the sweep must leave it alone.
    const other = spawn('sleep', ['30'], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, GPUQ_JOB_ID: `${jobId}x` },
    });
    try {
      // The main pid the sweep is told about has long ended: a pid that cannot be live.
      const out = execFileSync(PYTHON, [MONITOR, 'sweep', '--job-id', jobId, '--pid', '4194304'], {
        encoding: 'utf8',
      });
      expect(out.trim()).toBe('1');
      expect(await exited).toBe('SIGKILL');
      expect(other.exitCode).toBe(null);
      expect(other.signalCode).toBe(null);
      process.kill(other.pid as number, 0); // throws if the sweep took it
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('the watch does the final sweep when asked on its stdin, answers the count and stops', async () => {
    const jobId = `watchsweep${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), 'gpuq-watch-sweep-'));
    const escapee = spawn('sleep', ['30'], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, GPUQ_JOB_ID: jobId },
    });
    const killed = new Promise<NodeJS.Signals | null>((resolve) => escapee.on('exit', (_c, signal) => resolve(signal)));
    // The main pid has ended (a pid that cannot be live): what the supervisor sees when it asks.
    const watch = spawn(PYTHON, [MONITOR, 'watch', '--dir', dir, '--job-id', jobId, '--pid', '4194304', '--requests'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    watch.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    watch.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const ended = new Promise<number | null>((resolve) => watch.on('exit', (code) => resolve(code)));
    try {
      watch.stdin.write('sweep\n');
      expect(await ended).toBe(0);
      expect(stdout).toBe('1\n');
      expect(stderr).toBe('monitor.py: the final sweep killed 1\n');
      expect(await killed).toBe('SIGKILL');
      // It stopped as on SIGTERM: the last monitor.json is there.
      expect(JSON.parse(readFileSync(join(dir, 'monitor.json'), 'utf8'))).toMatchObject({ version: 1 });
    } finally {
      escapee.kill('SIGKILL');
      watch.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
