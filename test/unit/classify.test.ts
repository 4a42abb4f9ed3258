/**
 * The classifier, one row per way a job can end (issue 3, part 3), plus the misleading
 * combinations: what the supervisor recorded outweighs what the program printed.
 */
import { describe, expect, it } from 'vitest';
import { classify, type ClassifyInput } from '../../src/core/classify.js';
import type { Limits, MonitorFile, StatusFile, VerdictClass } from '../../src/core/types.js';
import { exited, GiB, LIMITS, MiB, monitor, probe, TB } from '../helpers/classify-fixtures.js';

interface Row {
  name: string;
  status: StatusFile | null;
  stderr?: string;
  limits?: Partial<Limits>;
  monitor?: Partial<MonitorFile> | null;
  cancelRequested?: boolean;
  probe?: Partial<ClassifyInput['probe']>;
  launchBootId?: string | null;
  want: {
    class: VerdictClass;
    cause?: string | null;
    summary?: RegExp;
    evidence?: RegExp;
    hint?: RegExp;
    signal?: string | null;
  };
}

const KERNEL_OOM = [
  '[ 3833.581301] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,' +
    'mems_allowed=0,global_oom,task_memcg=/user.slice,task=python3,pid=8580,uid=1000',
  '[ 3833.581324] Out of memory: Killed process 8580 (python3) ' +
    'total-vm:9221460kB, anon-rss:8204288kB, file-rss:6712kB, shmem-rss:0kB, ' +
    'UID:1000 pgtables:16468kB oom_score_adj:0',
];
const CGROUP_OOM = [
  '[ 3833.581301] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,' +
    'mems_allowed=0,oom_memcg=/gpuq/k2x9a1b3,task_memcg=/gpuq/k2x9a1b3,task=python3,' +
    'pid=8580,uid=0',
  '[ 3833.581324] Memory cgroup out of memory: Killed process 8580 (python3) ' +
    'total-vm:221460kB, anon-rss:204288kB, file-rss:6712kB, shmem-rss:0kB, ' +
    'UID:0 pgtables:468kB oom_score_adj:0',
];

const ROWS: Row[] = [
  // --- the wall clock
  {
    name: 'timeout: SIGTERM at the limit, the program stopped (124-style, 143 from the group kill)',
    status: exited(143, { timedOut: true, limitFired: 'timeout' }),
    limits: { timeoutS: 1800 },
    want: {
      class: 'timeout',
      cause: null,
      summary: /^Stopped at the 30m wall-clock limit\.$/,
      hint: /--timeout 1h/,
      signal: 'SIGTERM',
    },
  },
  {
    name: 'timeout: it ignored SIGTERM and was killed after the grace period',
    status: exited(137, { timedOut: true, limitFired: 'timeout', killedAfterGrace: true }),
    limits: { timeoutS: 90, graceS: 10 },
    want: {
      class: 'timeout',
      summary: /1m30s wall-clock limit; it ignored SIGTERM and was killed 10s later\./,
      evidence: /then SIGKILL after the grace period/,
      hint: /handle SIGTERM/,
    },
  },
  {
    name: 'timeout: it printed CUDA out of memory before hanging — the limit decides',
    status: exited(143, { timedOut: true, limitFired: 'timeout' }),
    stderr: TB.torchOom2,
    want: { class: 'timeout' },
  },
  // --- CPU time
  {
    name: 'cpu time: the supervisor recorded the CPU-time limit (ulimit -t → SIGKILL)',
    status: exited(137, { limitFired: 'cpu', cpuSeconds: 60.2 }),
    limits: { cpuTimeS: 60 },
    want: {
      class: 'limit',
      cause: 'cpu_time',
      summary: /^Killed at the CPU-time limit of 1m after 1m of CPU time\.$/,
      hint: /--cpu-time 2m/,
    },
  },
  {
    name: 'cpu time: SIGXCPU (152) with nothing recorded',
    status: exited(152, { cpuSeconds: 30 }),
    limits: { cpuTimeS: 30 },
    want: { class: 'limit', cause: 'cpu_time', signal: 'SIGXCPU', hint: /OMP_NUM_THREADS/ },
  },
  {
    name: 'cpu time: SIGKILL with all the CPU time used, the wrapper missed it',
    status: exited(137, { cpuSeconds: 59.6 }),
    limits: { cpuTimeS: 60 },
    want: { class: 'limit', cause: 'cpu_time' },
  },
  // --- host memory
  {
    name: 'memory: the cgroup counted an OOM kill of the main process',
    status: exited(137, { cgroup: 'v2', oomKills: 1, kernelOom: CGROUP_OOM }),
    limits: { memoryBytes: 200 * MiB },
    monitor: { peakRssBytes: 198 * MiB },
    want: {
      class: 'oom',
      cause: 'cgroup',
      summary: /^Killed for memory at the memory limit of 200 MiB\.$/,
      // One memory peak (the sampler's here: no cgroup peak recorded); the kernel's RSS at the kill is named apart.
      evidence: /^memory peaked at 198 MiB of the 200 MiB limit \(99%\), as sampled/,
      hint: /--memory 400m/,
    },
  },
  {
    name: 'memory: the kernel OOM killer (no --memory), its line parsed into evidence',
    status: exited(137, { kernelOom: KERNEL_OOM }),
    want: {
      class: 'oom',
      cause: 'oom_killer',
      summary: /^Killed for memory by the kernel OOM killer\.$/,
      evidence: /the kernel OOM killer killed it: python3 \(pid 8580\) held 7\.83 GiB RSS/,
      hint: /more RAM/,
    },
  },
  {
    name: "memory: gpuq's memory watch fired (no cgroup)",
    status: exited(137, { limitFired: 'memory' }),
    limits: { memoryBytes: 2 * GiB },
    monitor: { peakRssBytes: 2_125_824_819, memoryWatchFired: true, memoryWatchRssBytes: 2_125_824_819 },
    want: {
      class: 'oom',
      cause: 'memory_watch',
      summary: /^Killed for going over the memory limit of 2 GiB when its processes held 1\.98 GiB\.$/,
      evidence: /^memory peaked at 1\.98 GiB of the 2 GiB limit \(99%\), as sampled/,
    },
  },
  {
    name: 'memory: Python MemoryError under --memory',
    status: exited(1),
    stderr: TB.memoryError,
    limits: { memoryBytes: 512 * MiB },
    want: {
      class: 'oom',
      cause: 'memory_error',
      summary: /^An allocation was refused under the 512 MiB memory limit, so the program ran out of memory\.$/,
      evidence: /stderr: MemoryError/,
    },
  },
  {
    name: 'memory: numpy _ArrayMemoryError without --memory names the size it asked for',
    status: exited(1),
    stderr: TB.numpyMemoryError,
    want: {
      class: 'oom',
      cause: 'memory_error',
      summary: /allocation of 7\.28 TiB was refused/,
      hint: /asked for 7\.28 TiB at once/,
    },
  },
  {
    name: "memory: torch's CPU allocator refusing 32 GiB",
    status: exited(1),
    stderr: TB.torchCpuAlloc,
    want: { class: 'oom', cause: 'memory_error', summary: /32 GiB/ },
  },
  {
    name: 'memory: C++ std::bad_alloc then abort (134)',
    status: exited(134),
    stderr: TB.badAlloc,
    want: { class: 'oom', cause: 'memory_error' },
  },
  {
    name: 'memory: a DataLoader worker was OOM-killed and the main process then raised',
    status: exited(1, { cgroup: 'v2', oomKills: 1 }),
    stderr: 'RuntimeError: DataLoader worker (pid 4242) is killed by signal: Killed.\n',
    limits: { memoryBytes: 4 * GiB },
    want: {
      class: 'oom',
      cause: 'cgroup',
      summary:
        /^One of its processes was killed for memory at the memory limit of 4 GiB, and it then exited with code 1\.$/,
    },
  },
  {
    name: 'memory: SIGKILL with the sampled RSS at the limit and nothing else readable',
    status: exited(137),
    limits: { memoryBytes: 1 * GiB },
    monitor: { peakRssBytes: 0.97 * GiB },
    want: { class: 'oom', cause: 'rss_at_limit', summary: /97% of the 1 GiB limit/ },
  },
  // --- signals from outside, and a cancel
  {
    name: 'SIGKILL from outside: 137 with no evidence of any limit',
    status: exited(137),
    want: {
      class: 'signaled',
      cause: 'sigkill',
      summary: /^Killed by SIGKILL from outside gpuq: no gpuq limit fired and no OOM kill was recorded\.$/,
      hint: /dmesg/,
    },
  },
  {
    name: 'SIGKILL from outside, well under --memory: not a memory kill',
    status: exited(137),
    limits: { memoryBytes: 8 * GiB },
    monitor: { peakRssBytes: 1 * GiB },
    want: { class: 'signaled', cause: 'sigkill' },
  },
  {
    name: 'SIGTERM from outside (143), no cancel',
    status: exited(143),
    want: {
      class: 'signaled',
      cause: 'sigterm',
      summary: /^Stopped by SIGTERM from outside gpuq, not by a gpuq cancel or limit\.$/,
      hint: /journalctl/,
    },
  },
  {
    name: 'gpuq cancel: the supervisor recorded it (143)',
    status: exited(143, { cancelled: true }),
    cancelRequested: true,
    want: { class: 'cancelled', summary: /^Cancelled with gpuq cancel\.$/, evidence: /gpuq cancel sent SIGTERM/ },
  },
  {
    name: 'gpuq cancel: it ignored SIGTERM and was killed after the grace period',
    status: exited(137, { cancelled: true, killedAfterGrace: true }),
    limits: { graceS: 30 },
    want: { class: 'cancelled', evidence: /SIGKILL after the 30s grace period/ },
  },
  {
    name: 'a cancel asked for after the job was already killed from outside: signaled, not cancelled',
    status: exited(137),
    cancelRequested: true,
    want: { class: 'signaled', cause: 'sigkill', evidence: /had already ended when it arrived/ },
  },
  {
    name: 'a cancel asked for, but the job had already exited 0 on its own',
    status: exited(0),
    cancelRequested: true,
    want: { class: 'succeeded' },
  },
  // --- crashes
  {
    name: 'SIGSEGV (139)',
    status: exited(139),
    stderr: TB.segfault,
    want: {
      class: 'signaled',
      cause: 'sigsegv',
      signal: 'SIGSEGV',
      summary: /^Crashed with a segmentation fault \(SIGSEGV\) in native code\.$/,
      hint: /PYTHONFAULTHANDLER/,
    },
  },
  {
    name: 'SIGABRT (134) from an uncaught C++ exception',
    status: exited(134),
    stderr: TB.cxxAbort,
    want: { class: 'signaled', cause: 'sigabrt', summary: /uncaught C\+\+ exception \(std::runtime_error\)/ },
  },
  {
    name: 'SIGABRT (134) from a CUDA device-side assert',
    status: exited(134),
    stderr: TB.deviceAssert,
    want: { class: 'signaled', cause: 'sigabrt', summary: /device-side assertion/, hint: /CUDA_LAUNCH_BLOCKING=1/ },
  },
  {
    name: 'SIGABRT (134) with nothing on stderr',
    status: exited(134),
    want: {
      class: 'signaled',
      cause: 'sigabrt',
      summary: /^Aborted \(SIGABRT\), usually by a failed assertion or an uncaught C\+\+ exception\.$/,
    },
  },
  // --- GPU memory
  {
    name: 'CUDA OOM: torch 2.x torch.OutOfMemoryError, another process on the GPU',
    status: exited(1),
    stderr: TB.torchOom2,
    want: {
      class: 'gpu_oom',
      summary: /^The GPU ran out of memory trying to allocate 20\.00 GiB with 3\.56 GiB free of 79\.11 GiB\.$/,
      hint: /other processes held memory on that GPU/,
    },
  },
  {
    name: 'CUDA OOM: torch 2.1 "total capacty" (sic) and "0 bytes is free"',
    status: exited(1),
    stderr: TB.torchOomCapacty,
    want: { class: 'gpu_oom', summary: /1\.70 GiB with 0 bytes free of 6\.00 GiB/, hint: /mixed precision/ },
  },
  {
    name: 'CUDA OOM: torch 1.x RuntimeError: CUDA out of memory',
    status: exited(1),
    stderr: TB.torchOom1,
    want: { class: 'gpu_oom', summary: /2\.00 GiB with 1\.20 GiB free of 15\.78 GiB/, hint: /gradient checkpointing/ },
  },
  {
    name: 'CUDA OOM: CUBLAS_STATUS_ALLOC_FAILED',
    status: exited(1),
    stderr: TB.cublas,
    want: { class: 'gpu_oom', summary: /^The GPU ran out of memory\.$/, hint: /smaller batch size/ },
  },
  {
    name: 'CUDA OOM: cudaErrorMemoryAllocation (CuPy)',
    status: exited(1),
    stderr: TB.cupy,
    want: { class: 'gpu_oom' },
  },
  {
    name: 'CUDA OOM: JAX RESOURCE_EXHAUSTED, hint about preallocation',
    status: exited(1),
    stderr: TB.jax,
    want: { class: 'gpu_oom', summary: /16 GiB/, hint: /XLA_PYTHON_CLIENT_PREALLOCATE/ },
  },
  // --- other limits
  {
    name: 'disk full: No space left on device',
    status: exited(1),
    stderr: TB.diskFull,
    want: {
      class: 'limit',
      cause: 'disk_full',
      summary: /^The disk was full\.$/,
      evidence: /No space left on device/,
      hint: /free disk space on node local/,
    },
  },
  {
    name: 'shared memory full in a DataLoader: disk_full with a /dev/shm hint',
    status: exited(1),
    stderr: TB.shmFull,
    want: { class: 'limit', cause: 'disk_full', hint: /\/dev\/shm/ },
  },
  {
    name: 'fork EAGAIN: BlockingIOError from os.fork under --pids',
    status: exited(1),
    stderr: TB.forkEagain,
    limits: { pids: 64 },
    monitor: { peakProcs: 40, peakThreads: 64 },
    want: {
      class: 'limit',
      cause: 'pids',
      summary: /^It hit the process limit of 64\.$/,
      // --pids counts threads too: the peak set against it is processes and threads together.
      evidence: /^processes and threads peaked at 64 of the 64 limit \(100%\)/,
      hint: /--pids 128/,
    },
  },
  {
    name: 'fork EAGAIN from subprocess.Popen',
    status: exited(1),
    stderr: TB.popenEagain,
    want: { class: 'limit', cause: 'pids' },
  },
  {
    name: 'the pids cgroup refused forks',
    status: exited(1, { cgroup: 'v2', pidsRefused: 17 }),
    stderr: TB.socketEagain,
    want: { class: 'limit', cause: 'pids', evidence: /refused 17 forks/ },
  },
  {
    name: "can't start new thread counts against the process limit",
    status: exited(1),
    stderr: TB.threadLimit,
    want: { class: 'limit', cause: 'pids' },
  },
  {
    name: 'EAGAIN from a non-blocking socket is not a process limit',
    status: exited(1),
    stderr: TB.socketEagain,
    want: {
      class: 'failed',
      cause: null,
      summary: /^Exited with code 1: BlockingIOError: \[Errno 11\] Resource temporarily unavailable\.$/,
    },
  },
  {
    name: 'Too many open files',
    status: exited(1),
    stderr: TB.tooManyFiles,
    limits: { files: 64 },
    want: { class: 'limit', cause: 'open_files', summary: /^It hit the open-files limit of 64\.$/, hint: /with open/ },
  },
  {
    name: 'File too large (Python ignores SIGXFSZ and gets EFBIG)',
    status: exited(1),
    stderr: TB.fileTooLarge,
    limits: { fileSizeBytes: 1 * MiB },
    want: { class: 'limit', cause: 'file_size', summary: /file-size limit of 1 MiB/, hint: /--file-size 2m/ },
  },
  {
    name: 'File size: killed by SIGXFSZ (a program that does not ignore it)',
    status: exited(153),
    want: { class: 'limit', cause: 'file_size', evidence: /SIGXFSZ/ },
  },
  // --- what the program reports itself
  {
    name: 'ModuleNotFoundError: cause missing_module, the hint names the module',
    status: exited(1),
    stderr: TB.missingModule,
    want: {
      class: 'failed',
      cause: 'missing_module',
      summary: /^Could not import lightgbm on node local\.$/,
      hint: /python3 -m pip install lightgbm/,
    },
  },
  {
    name: 'ModuleNotFoundError for sklearn: the hint names the pip package',
    status: exited(1),
    stderr: TB.missingSubmodule,
    want: { class: 'failed', cause: 'missing_module', summary: /sklearn/, hint: /pip install scikit-learn/ },
  },
  {
    name: 'ImportError: cannot import name — a version mismatch',
    status: exited(1),
    stderr: TB.cannotImportName,
    want: { class: 'failed', cause: 'missing_module', summary: /nosuchthing from os/, hint: /different version/ },
  },
  {
    name: 'ImportError: a shared library is missing (libGL for OpenCV)',
    status: exited(1),
    stderr: TB.libGL,
    want: { class: 'failed', cause: 'missing_module', summary: /libGL\.so\.1/, hint: /opencv-python-headless/ },
  },
  {
    name: 'SyntaxError, with file and line',
    status: exited(1),
    stderr: TB.syntaxError,
    want: {
      class: 'failed',
      cause: 'syntax_error',
      summary: /^A syntax error at line 14 stopped it before it ran\.$/,
      hint: /solution\.py:14/,
    },
  },
  {
    name: 'IndentationError counts as a syntax error',
    status: exited(1),
    stderr: TB.indentationError,
    want: { class: 'failed', cause: 'syntax_error' },
  },
  {
    name: 'a plain failure quotes the final exception and points at the logs',
    status: exited(1),
    stderr: TB.valueError,
    want: {
      class: 'failed',
      cause: null,
      summary: /^Exited with code 1: ValueError: expected 10 columns, got 9\.$/,
      hint: /gpuq logs k2x9a1b3 --stderr/,
    },
  },
  {
    name: 'a failure with nothing on stderr says so',
    status: exited(3),
    want: { class: 'failed', summary: /^Exited with code 3 and wrote nothing to stderr\.$/, hint: /--stdout/ },
  },
  // --- lost
  {
    name: 'lost: the node rebooted (boot id changed)',
    status: { ...exited(0), state: 'running', exitCode: null, endedAtMs: null },
    launchBootId: 'boot-a',
    probe: { bootId: 'boot-b' },
    want: { class: 'lost', cause: 'rebooted', summary: /rebooted/, evidence: /boot-a to boot-b/ },
  },
  {
    name: 'lost: the supervisor vanished, status.json still says running',
    status: { ...exited(0), state: 'running', exitCode: null, endedAtMs: null },
    want: {
      class: 'lost',
      cause: 'vanished',
      summary: /^The supervisor vanished before the job ended; its exit status is lost\.$/,
    },
  },
  {
    name: 'lost: the job folder is gone',
    status: null,
    probe: { missing: true },
    want: { class: 'lost', cause: 'vanished', evidence: /folder is gone/ },
  },
  // --- success, and the misleading combinations
  {
    name: 'success',
    status: exited(0),
    want: { class: 'succeeded', cause: null, summary: /^Exited 0\.$/ },
  },
  {
    name: 'prints "CUDA out of memory" (a retried batch) and exits 0: a success',
    status: exited(0),
    stderr: `WARNING: CUDA out of memory at batch size 256, retrying with 128\n${TB.torchOom2}`,
    want: { class: 'succeeded', cause: null },
  },
  {
    name: 'prints MemoryError and a traceback it caught, exits 0: a success',
    status: exited(0),
    stderr: TB.memoryError,
    want: { class: 'succeeded' },
  },
  {
    name: 'a child was OOM-killed while the main process exited 0: reported, not hidden',
    status: exited(0, { cgroup: 'v1', oomKills: 1, kernelOom: CGROUP_OOM }),
    limits: { memoryBytes: 200 * MiB },
    want: {
      class: 'succeeded',
      cause: 'child_oom',
      summary: /^Exited 0, but one of its processes was killed for memory, so its results may be incomplete\.$/,
      evidence: /cgroup counted 1 OOM kill/,
      hint: /check that the results are complete/,
    },
  },
  {
    name: 'MemoryError text, then SIGKILL from outside: the signal, not the text',
    status: exited(137),
    stderr: TB.memoryError,
    want: { class: 'signaled', cause: 'sigkill' },
  },
  {
    name: 'CUDA OOM text, then SIGTERM from outside: the signal, not the text',
    status: exited(143),
    stderr: TB.torchOom2,
    want: { class: 'signaled', cause: 'sigterm' },
  },
  {
    name: 'a recovered CUDA OOM logged earlier, then a ValueError: failed, not gpu_oom',
    status: exited(1),
    stderr: `${TB.torchOom2}retrying with batch size 64\nEpoch 2: 100%|██████████| 1000/1000\n${TB.valueError}`,
    want: { class: 'failed', cause: null, summary: /ValueError/ },
  },
  {
    name: 'a chained exception whose cause is a CUDA OOM: gpu_oom',
    status: exited(1),
    stderr:
      TB.torchOom2 +
      '\nThe above exception was the direct cause of the following exception:\n\n' +
      'Traceback (most recent call last):\n  File "/w/train.py", line 99, in <module>\n' +
      '    raise RuntimeError("training failed") from e\nRuntimeError: training failed\n',
    want: { class: 'gpu_oom' },
  },
  {
    name: 'a log line mentioning "No space left on device" then a ModuleNotFoundError: missing_module',
    status: exited(1),
    stderr: `warning: cache write failed: No space left on device, continuing without cache\n${TB.missingModule}`,
    want: { class: 'failed', cause: 'missing_module' },
  },
  {
    name: 'the memory watch fired although the job exited 0 in the same instant: the watch wins',
    status: exited(0, { limitFired: 'memory' }),
    limits: { memoryBytes: 1 * GiB },
    monitor: { memoryWatchFired: true, memoryWatchRssBytes: 1.01 * GiB },
    want: { class: 'oom', cause: 'memory_watch' },
  },
  {
    name: 'cancelled after the timeout had fired: the cancel wins',
    status: exited(143, { cancelled: true, timedOut: true, limitFired: 'timeout' }),
    want: { class: 'cancelled' },
  },
  {
    name: 'a timeout while over memory: the wall clock fired first',
    status: exited(137, { timedOut: true, limitFired: 'timeout', oomKills: 1 }),
    want: { class: 'timeout' },
  },
  {
    name: 'segfault with a CUDA OOM logged earlier (a native crash after recovery): signaled',
    status: exited(139),
    stderr: `caught: CUDA out of memory, falling back to CPU\n${TB.segfault}`,
    want: { class: 'signaled', cause: 'sigsegv' },
  },
  {
    name: 'abort after an uncaught c10::OutOfMemoryError (libtorch C++): gpu_oom',
    status: exited(134),
    stderr:
      "terminate called after throwing an instance of 'c10::OutOfMemoryError'\n" +
      '  what():  CUDA out of memory. Tried to allocate 512.00 MiB (GPU 0; ' +
      '23.65 GiB total capacity; 22.80 GiB already allocated; 301.56 MiB free; ' +
      '22.95 GiB reserved in total by PyTorch)\n',
    want: { class: 'gpu_oom', summary: /512\.00 MiB/ },
  },
];

function run(row: Row) {
  const limits = { ...LIMITS, ...row.limits };
  const p = probe(row.status, row.stderr ?? '', row.probe);
  if (row.monitor !== undefined) p.monitor = row.monitor === null ? null : monitor(row.monitor);
  return classify({
    probe: p,
    limits,
    cancelRequested: row.cancelRequested ?? false,
    launchBootId: row.launchBootId ?? 'boot-a',
    node: 'local',
    jobId: 'k2x9a1b3',
  });
}

describe('classify: every row of the table', () => {
  it.each(ROWS.map((r) => [r.name, r] as const))('%s', (_name, row) => {
    const v = run(row);
    const show = JSON.stringify(v, null, 2);
    expect(v.class, show).toBe(row.want.class);
    if (row.want.cause !== undefined) expect(v.cause, show).toBe(row.want.cause);
    if (row.want.summary) expect(v.summary, show).toMatch(row.want.summary);
    if (row.want.evidence)
      expect(
        v.evidence.some((e) => row.want.evidence!.test(e)),
        show,
      ).toBe(true);
    if (row.want.hint)
      expect(
        v.hints.some((h) => row.want.hint!.test(h)),
        show,
      ).toBe(true);
    if (row.want.signal !== undefined) expect(v.signal, show).toBe(row.want.signal);
  });

  it.each(ROWS.map((r) => [r.name, r] as const))('summary is one sentence: %s', (_name, row) => {
    const v = run(row);
    expect(v.summary).not.toMatch(/\n/);
    expect(v.summary.length).toBeLessThanOrEqual(200);
    expect(v.summary).toMatch(/^[A-Z]/);
    // A sentence end followed by another sentence is two sentences (quoted stderr excepted).
    if (!/: /.test(v.summary)) expect(v.summary).not.toMatch(/[.!?] [A-Z]/);
    for (const e of v.evidence) expect(e).not.toMatch(/\n/);
    // Every failure tells the user what to do next.
    if (v.class !== 'succeeded' && v.class !== 'cancelled') expect(v.hints.length).toBeGreaterThan(0);
  });
});

describe('classify: the verdict record', () => {
  it('carries the exit code, the signal name and timedOut', () => {
    const v = run({
      name: '',
      status: exited(137, { timedOut: true, limitFired: 'timeout' }),
      want: { class: 'timeout' },
    });
    expect(v).toMatchObject({ exitCode: 137, signal: 'SIGKILL', timedOut: true });
    expect(v.evidence).toContain('exit code 137 (SIGKILL, kill)');
  });

  it('quotes the final stderr line as evidence of a failure', () => {
    const v = run({ name: '', status: exited(1), stderr: TB.valueError, want: { class: 'failed' } });
    expect(v.evidence).toContain('stderr: ValueError: expected 10 columns, got 9');
  });

  it('counts leftover processes the sweep killed', () => {
    const v = run({ name: '', status: exited(0, { leftovers: 2 }), want: { class: 'succeeded' } });
    expect(v.evidence).toContain('2 leftover processes killed after the job ended');
  });

  it('names the job id in hints when it is known, ID otherwise', () => {
    const p = probe(exited(1), TB.valueError);
    const withId = classify({
      probe: p,
      limits: LIMITS,
      cancelRequested: false,
      launchBootId: null,
      node: 'gpu1',
      jobId: 'abc',
    });
    const without = classify({ probe: p, limits: LIMITS, cancelRequested: false, launchBootId: null, node: null });
    expect(withId.hints.join('\n')).toMatch(/gpuq logs abc --stderr/);
    expect(without.hints.join('\n')).toMatch(/gpuq logs ID --stderr/);
  });

  it('does not claim a peak the sampler never measured', () => {
    const p = probe(exited(137, { oomKills: 1, cgroup: 'v1' }));
    p.monitor = monitor({ samples: 1, peakRssBytes: 0, peakProcs: 0 });
    const v = classify({
      probe: p,
      limits: { ...LIMITS, memoryBytes: 200 * MiB },
      cancelRequested: false,
      launchBootId: null,
      node: 'local',
    });
    expect(v.evidence.join('\n')).not.toMatch(/peaked at 0|peaked at {2}B/);
  });
});
