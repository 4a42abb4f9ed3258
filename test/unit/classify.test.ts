/**
 * The classifier, one row per way a job can end (issue 3, part 3), plus the misleading
 * combinations: what the supervisor recorded outweighs what the program printed.
 */
import { describe, expect, it } from 'vitest';
import { classify, type ClassifyInput } from '../../src/core/classify.js';
import type { Limits, MonitorFile, Sample, StatusFile, VerdictClass } from '../../src/core/types.js';
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

/** Issue 11, items 1-4: causes hidden behind symptoms, each branch with its first evidence and hint. */
describe('classify: causes behind symptoms', () => {
  const S = 1_700_000_000_000;
  const sample = (t: number, cpuPct: number): Sample => ({
    t,
    rssBytes: 100 * MiB,
    cpuPct,
    procs: 2,
    threads: 2,
    openFiles: 5,
    folderBytes: 0,
    gpu: null,
  });
  const idleAt = (...ts: number[]) => ts.map((t) => sample(t, 0));
  function judge(
    status: StatusFile,
    opts: { limits?: Partial<Limits>; monitor?: Partial<MonitorFile>; stderr?: string; samples?: Sample[] } = {},
  ) {
    const p = probe(status, opts.stderr ?? '', { recentSamples: opts.samples ?? [] });
    p.monitor = monitor(opts.monitor);
    const v = classify({
      probe: p,
      limits: { ...LIMITS, ...opts.limits },
      cancelRequested: false,
      launchBootId: 'boot-a',
      node: 'local',
      jobId: 'k2x9a1b3',
    });
    return { v, show: JSON.stringify(v, null, 2) };
  }
  const timedOut = (over: Partial<StatusFile> = {}) =>
    exited(143, { timedOut: true, limitFired: 'timeout', startedAtMs: S, limitFiredAtMs: S + 30_000, ...over });
  const mem = { memoryBytes: 512 * MiB, timeoutS: 30 };

  describe('an OOM kill and the wall-clock limit (item 1)', () => {
    it('killed for memory 3s in, then the timeout: oom/cgroup, timedOut, the kill first, memory hints then the pool', () => {
      const { v, show } = judge(timedOut({ oomKills: 1, cgroup: 'v1' }), {
        limits: mem,
        monitor: { firstOomKillAtMs: S + 3000 },
      });
      expect(v, show).toMatchObject({ class: 'oom', cause: 'cgroup', timedOut: true, exitCode: 143 });
      expect(v.summary).toBe(
        'One of its processes was killed for memory at the 512 MiB limit 3s in; ' +
          'the job then did not finish before the 30s wall-clock limit stopped it.',
      );
      expect(v.evidence[0]).toBe("the job's memory cgroup counted 1 OOM kill at its 512 MiB limit, 3s after the start");
      expect(v.evidence[1]).toBe('the wall-clock limit of 30s fired');
      expect(v.hints[0]).toMatch(/--memory 1g/);
      expect(v.hints[1]).toMatch(/multiprocessing\.Pool .*ProcessPoolExecutor.*BrokenProcessPool/);
    });

    it('idle samples between the kill and the limit: "made no progress"', () => {
      const { v } = judge(timedOut({ oomKills: 1, cgroup: 'v1' }), {
        limits: mem,
        monitor: { firstOomKillAtMs: S + 3000 },
        samples: idleAt(S + 26_000, S + 27_000, S + 28_000),
      });
      expect(v.summary).toMatch(
        /3s in; the job then made no progress \(idle\) until the 30s wall-clock limit stopped it\.$/,
      );
    });

    it('a kernel OOM line only (no cgroup), timed by the kernel log: oom/oom_killer', () => {
      const { v, show } = judge(timedOut({ kernelOom: KERNEL_OOM, kernelOomAtMs: S + 2000 }), { limits: mem });
      expect(v, show).toMatchObject({ class: 'oom', cause: 'oom_killer', timedOut: true });
      expect(v.summary).toMatch(/^One of its processes was killed for memory by the kernel OOM killer 2s in;/);
      expect(v.evidence[0]).toMatch(/^the kernel OOM killer killed it: python3 \(pid 8580\) .*, 2s after the start$/);
    });

    it("the monitor's time wins over the kernel log's (same clock as the timer's)", () => {
      const { v } = judge(timedOut({ oomKills: 1, cgroup: 'v1', kernelOom: CGROUP_OOM, kernelOomAtMs: S + 29_900 }), {
        limits: mem,
        monitor: { firstOomKillAtMs: S + 30_100 },
      });
      expect(v.class).toBe('timeout');
    });

    it('the timeout first, the OOM kill in the grace period: timeout, the kill as later evidence', () => {
      const { v, show } = judge(timedOut({ exitCode: 137, signal: 9, oomKills: 1, cgroup: 'v1' }), {
        limits: mem,
        monitor: { firstOomKillAtMs: S + 30_400 },
      });
      expect(v, show).toMatchObject({ class: 'timeout', cause: null, timedOut: true });
      expect(v.evidence[0]).toBe('the wall-clock limit of 30s fired');
      expect(v.evidence[1]).toBe(
        "the job's memory cgroup counted 1 OOM kill at its 512 MiB limit, 30s after the start, after the wall-clock limit had fired",
      );
      expect(v.hints[0]).toMatch(/--timeout 1m/);
    });

    it('files from before the times were recorded: timeout, the OOM kill still in the evidence', () => {
      const { v } = judge(exited(143, { timedOut: true, limitFired: 'timeout', oomKills: 1, cgroup: 'v1' }), {
        limits: mem,
      });
      expect(v.class).toBe('timeout');
      expect(v.evidence[0]).toBe('the wall-clock limit of 30s fired');
      expect(v.evidence[1]).toBe("the job's memory cgroup counted 1 OOM kill at its 512 MiB limit");
    });

    it('an OOM time without any OOM kill recorded is not believed', () => {
      const { v } = judge(timedOut(), { limits: mem, monitor: { firstOomKillAtMs: S + 1000 } });
      expect(v.class).toBe('timeout');
    });
  });

  describe('a limit reached by a child while the parent failed (item 2)', () => {
    const hit = { pid: 555, name: 'python3', cpuSeconds: 0.93 };
    it('a child vanished at --cpu-time, the parent exited 2: limit/cpu_time', () => {
      const { v, show } = judge(exited(2), {
        limits: { cpuTimeS: 1 },
        monitor: { cpuLimitHit: hit },
        stderr: 'worker ended with -9\n',
      });
      expect(v, show).toMatchObject({ class: 'limit', cause: 'cpu_time', exitCode: 2 });
      expect(v.summary).toBe(
        'Its process python3 (pid 555) was stopped at the 1s CPU-time limit, and the job then exited with code 2.',
      );
      expect(v.evidence[0]).toBe(
        'its process python3 (pid 555) was last seen at 0.93s of CPU time, within reach of the 1s per-process CPU-time limit, and then vanished',
      );
      expect(v.hints[0]).toMatch(/--cpu-time 2s/);
    });

    it("the process's name is the job's text: made printable and bounded", () => {
      const { v } = judge(exited(2), {
        limits: { cpuTimeS: 1 },
        monitor: { cpuLimitHit: { ...hit, name: `evil\u001b[2J${'x'.repeat(200)}` } },
      });
      expect(v.summary).not.toMatch(/\u001b/);
      expect(v.summary.length).toBeLessThanOrEqual(200);
    });

    it('a recorded hit without --cpu-time is not a CPU-time limit', () => {
      const { v } = judge(exited(2), { limits: { cpuTimeS: null }, monitor: { cpuLimitHit: hit } });
      expect(v.class).toBe('failed');
    });

    it('a shell child killed by SIGXFSZ ("File size limit exceeded"), the parent exited 3: limit/file_size', () => {
      const { v, show } = judge(exited(3), {
        limits: { fileSizeBytes: MiB },
        stderr: 'bash: line 1:  4242 File size limit exceeded dd if=/dev/zero of=big bs=1M count=4 status=none\n',
      });
      expect(v, show).toMatchObject({ class: 'limit', cause: 'file_size' });
      expect(v.evidence[0]).toMatch(/^stderr: .*File size limit exceeded dd/);
      expect(v.hints[0]).toMatch(/--file-size 2m/);
    });

    it('"File too large" without a file-size limit is not a file_size limit (stderr is the job\'s text)', () => {
      const { v, show } = judge(exited(1), { limits: { fileSizeBytes: null }, stderr: TB.fileTooLarge });
      expect(v, show).toMatchObject({ class: 'failed', cause: null });
      expect(v.evidence).toContain('stderr: OSError: [Errno 27] File too large');
    });

    it('forks refused by the pids cgroup, the parent exited 4: limit/pids, the refusals first', () => {
      const { v, show } = judge(exited(4, { pidsRefused: 3, cgroup: 'v1' }), {
        limits: { pids: 8 },
        stderr: 'fork failed: [Errno 11] Resource temporarily unavailable\n',
      });
      expect(v, show).toMatchObject({ class: 'limit', cause: 'pids' });
      expect(v.evidence[0]).toBe('the pids cgroup refused 3 forks');
      expect(v.evidence[1]).toBe('stderr: fork failed: [Errno 11] Resource temporarily unavailable');
      expect(v.hints[0]).toMatch(/--pids 16/);
    });

    it('a refused fork under --pids without a cgroup (ulimit -u): limit/pids from stderr', () => {
      const { v } = judge(exited(1), { limits: { pids: 8 }, stderr: TB.forkEagain });
      expect(v).toMatchObject({ class: 'limit', cause: 'pids' });
      expect(v.evidence[0]).toMatch(/^stderr: BlockingIOError: \[Errno 11\]/);
    });
  });

  describe('exit 0 although a limit refused something (item 2)', () => {
    it('"File too large" under --file-size: succeeded/limit_refused, the refusal as evidence', () => {
      const { v, show } = judge(exited(0), { limits: { fileSizeBytes: MiB }, stderr: TB.fileTooLarge });
      expect(v, show).toMatchObject({ class: 'succeeded', cause: 'limit_refused', exitCode: 0 });
      expect(v.summary).toBe(
        'Exited 0, but the file-size limit of 1 MiB refused it a write, so its results may be incomplete.',
      );
      expect(v.evidence[0]).toBe('stderr: OSError: [Errno 27] File too large');
      expect(v.hints[0]).toMatch(/^check that the results are complete/);
      expect(v.hints[1]).toMatch(/--file-size 2m/);
    });

    it('"File too large" without a file-size limit: a plain success', () => {
      const { v } = judge(exited(0), { limits: { fileSizeBytes: null }, stderr: TB.fileTooLarge });
      expect(v).toMatchObject({ class: 'succeeded', cause: null, summary: 'Exited 0.' });
    });

    it('forks the pids cgroup refused: limit_refused, the refusals as evidence', () => {
      const { v } = judge(exited(0, { pidsRefused: 2, cgroup: 'v1' }), { limits: { pids: 8 } });
      expect(v).toMatchObject({ class: 'succeeded', cause: 'limit_refused' });
      expect(v.evidence[0]).toBe('the pids cgroup refused 2 forks');
    });

    it('a child stopped at --cpu-time: limit_refused, naming it', () => {
      const { v } = judge(exited(0), {
        limits: { cpuTimeS: 1 },
        monitor: { cpuLimitHit: { pid: 9, name: 'sort', cpuSeconds: 0.95 } },
      });
      expect(v).toMatchObject({ class: 'succeeded', cause: 'limit_refused' });
      expect(v.summary).toMatch(/^Exited 0, but its process sort \(pid 9\) was stopped at the 1s CPU-time limit/);
    });

    it('a child OOM kill still outranks a refusal', () => {
      const { v } = judge(exited(0, { oomKills: 1, cgroup: 'v1' }), {
        limits: { fileSizeBytes: MiB },
        stderr: TB.fileTooLarge,
      });
      expect(v.cause).toBe('child_oom');
    });
  });

  describe('hints follow the evidence of a timeout (item 3)', () => {
    const ignored = { killedAfterGrace: true, exitCode: 137, signal: 9 };
    it('SIGTERM ignored: the first hint says so; idle samples before the limit come second', () => {
      const { v } = judge(timedOut(ignored), {
        limits: { timeoutS: 30 },
        samples: idleAt(S + 27_000, S + 28_000, S + 29_000, S + 31_000, S + 32_000),
      });
      expect(v.hints[0]).toMatch(/^it ignored SIGTERM: handle SIGTERM/);
      expect(v.hints[1]).toMatch(/idle before the limit fired/);
    });

    it('SIGTERM ignored, only grace-period samples (idle by construction): no deadlock hint', () => {
      const { v } = judge(timedOut(ignored), {
        limits: { timeoutS: 30 },
        samples: idleAt(S + 30_500, S + 31_000, S + 32_000, S + 33_000, S + 34_000),
      });
      expect(v.hints[0]).toMatch(/^it ignored SIGTERM/);
      expect(v.hints.join('\n')).not.toMatch(/deadlock/);
    });

    it('busy before the limit: no deadlock hint, checkpointing first', () => {
      const { v } = judge(timedOut(), {
        limits: { timeoutS: 30 },
        samples: [sample(S + 27_000, 99), sample(S + 28_000, 100), sample(S + 29_000, 98)],
      });
      expect(v.hints[0]).toMatch(/save checkpoints/);
      expect(v.hints.join('\n')).not.toMatch(/deadlock/);
    });

    it('idle before the limit, SIGTERM honoured: the deadlock hint leads (old files: the deadline stands in)', () => {
      const { v } = judge(exited(143, { timedOut: true, limitFired: 'timeout', startedAtMs: S }), {
        limits: { timeoutS: 30 },
        samples: idleAt(S + 27_000, S + 28_000, S + 29_000),
      });
      expect(v.hints[0]).toMatch(/idle before the limit fired.*deadlock/);
    });
  });

  it("a cancel's evidence is the cancel and the exit status, nothing the job wrote (item 4)", () => {
    const { v } = judge(exited(143, { cancelled: true, leftovers: 2 }), { stderr: TB.valueError });
    expect(v.class).toBe('cancelled');
    expect(v.evidence).toEqual([
      'gpuq cancel sent SIGTERM to the process group',
      'exit code 143 (SIGTERM, termination request)',
    ]);
  });
});
