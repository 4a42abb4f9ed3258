/**
 * What a job's stderr tail says about how it died: GPU and host out-of-memory errors, resource
 * limits hit (disk, processes, descriptors, file size), Python's own causes (missing module,
 * syntax error …) and the last line worth quoting. Pure text matching, no judgement: classify.ts
 * weighs these findings against what the supervisor recorded.
 *
 * Each finder returns the latest matching line: in a tail, the last error is usually the fatal one.
 */
import { formatBytes, printable, stripAnsi } from './format.js';

/** One Python exception line (`Name: message` at column 0) and where it was raised. */
export interface PyException {
  /** Dotted name as printed, e.g. "torch.OutOfMemoryError". */
  name: string;
  /** The text after "Name: " ('' when bare, as `MemoryError` prints). */
  message: string;
  /** The whole line. */
  text: string;
  /** Index in the cleaned lines. */
  index: number;
  /** The nearest `File "…", line N` above it (SyntaxError points at the offending line). */
  file: string | null;
  line: number | null;
}

export type GpuFramework = 'torch' | 'jax' | 'tensorflow' | 'cupy' | 'cuda';

export interface GpuOomHit {
  line: string;
  framework: GpuFramework;
  /** What the failing allocation asked for, as printed ("20.00 GiB"), when the message says. */
  requested: string | null;
  /** Free and total memory of the GPU at that moment, when the message says (torch). */
  free: string | null;
  total: string | null;
  /** Other processes holding memory on that GPU, as torch ≥ 2.1 lists them. */
  otherProcesses: { pid: number; amount: string }[];
  /** torch says reserved-but-unallocated memory is large: fragmentation. */
  fragmented: boolean;
}

export interface HostMemoryHit {
  line: string;
  /** What the failing allocation asked for, when the message says ("7.28 TiB"). */
  requested: string | null;
}

export type LimitCause = 'disk_full' | 'pids' | 'open_files' | 'file_size';

export interface LimitHit {
  cause: LimitCause;
  line: string;
  /** disk_full only: a disk quota rather than a full filesystem. */
  quota: boolean;
}

export type ProgramCause =
  | 'syntax_error'
  | 'missing_module'
  | 'cuda_unavailable'
  | 'file_not_found'
  | 'command_not_found'
  | 'read_only_fs'
  | 'no_network';

export interface ProgramCauseHit {
  cause: ProgramCause;
  line: string;
  /** missing_module: the module that is missing ("numpy"); cannot-import-name: the module asked. */
  module: string | null;
  /** missing_module: the name that could not be imported from `module`. */
  importName: string | null;
  /** missing_module: a shared library that failed to load ("libGL.so.1"). */
  library: string | null;
  /** syntax_error: where ("/…/main.py", 3). file_not_found: the path it looked for. */
  file: string | null;
  lineNo: number | null;
  /** cuda_unavailable: which kind of trouble. command_not_found: the command. */
  detail: string | null;
}

/** Everything the stderr tail says, found once and handed to the classifier. */
export interface StderrFindings {
  lines: string[];
  exceptions: PyException[];
  gpuOom: GpuOomHit | null;
  hostMemory: HostMemoryHit | null;
  limit: LimitHit | null;
  programCause: ProgramCauseHit | null;
  lastLine: string | null;
}

const EXCEPTION_LINE =
  /^((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit|Failure|Exhausted))(?::\s?(.*))?$/;
const FILE_LINE = /^\s*File "(.+)", line (\d+)/;

/**
 * Splits a stderr tail into clean lines: no ANSI colours, only the last `\r` segment of a
 * progress bar, no trailing blanks. The other finders all work on these lines.
 */
export function stderrLines(tail: string): string[] {
  return stripAnsi(tail)
    .split('\n')
    .map((raw) => {
      const segments = raw.split('\r').filter((s) => s.trim() !== '');
      return printable(segments[segments.length - 1] ?? '').trimEnd();
    });
}

/** The Python exception lines in the tail, oldest first, each with the frame that raised it. */
export function pythonExceptions(lines: readonly string[]): PyException[] {
  const found: PyException[] = [];
  let file: string | null = null;
  let line: number | null = null;
  lines.forEach((text, index) => {
    const frame = FILE_LINE.exec(text);
    if (frame) {
      file = frame[1] ?? null;
      line = Number(frame[2]);
      return;
    }
    const m = EXCEPTION_LINE.exec(text);
    if (!m) return;
    found.push({ name: m[1] as string, message: (m[2] ?? '').trim(), text, index, file, line });
    file = null;
    line = null;
  });
  return found;
}

/** Index and text of the latest line matching any of the patterns, or null. */
function latest(lines: readonly string[], patterns: readonly RegExp[]): { index: number; line: string } | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (patterns.some((p) => p.test(line))) return { index: i, line };
  }
  return null;
}

const GPU_OOM: readonly (readonly [RegExp, GpuFramework])[] = [
  [/torch(?:\.cuda)?\.OutOfMemoryError/, 'torch'],
  [/\b(?:CUDA|HIP) out of memory\b/, 'torch'],
  [/CUDA error: out of memory/, 'cuda'],
  [/CUBLAS_STATUS_ALLOC_FAILED/, 'cuda'],
  [/CUDNN_STATUS_ALLOC_FAILED/, 'cuda'],
  [/cudaErrorMemoryAllocation/, 'cuda'],
  [/CUDA_ERROR_OUT_OF_MEMORY/, 'cuda'],
  [/RESOURCE_EXHAUSTED:\s*Out of memory/i, 'jax'],
  [/OOM when allocating tensor/, 'tensorflow'],
  [/cupy[\w.]*OutOfMemoryError/, 'cupy'],
  [/cuMemAlloc failed: out of memory/, 'cuda'],
];

const SIZE_TEXT = String.raw`(\d+(?:\.\d+)?\s?[KMGTP]i?B)`;
/** Free memory may be "0 bytes". */
const FREE_TEXT = String.raw`(\d+(?:\.\d+)?\s?(?:[KMGTP]i?B|bytes))`;

/** First capture of `re` in `line`, or null. */
function capture(line: string, re: RegExp): string | null {
  return re.exec(line)?.[1] ?? null;
}

/** "12884901888 bytes" or "1,000,000,000 bytes" → the number; null otherwise. */
function byteCount(line: string, re: RegExp): number | null {
  const text = capture(line, re);
  return text === null ? null : Number(text.replace(/,/g, ''));
}

/**
 * The latest GPU out-of-memory error (torch, CUDA libraries, jax/XLA, TensorFlow, CuPy) with
 * what it reveals: the size asked for, free/total memory, other processes on the GPU.
 */
export function findGpuOom(lines: readonly string[]): GpuOomHit | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    const kind = GPU_OOM.find(([re]) => re.test(line));
    if (!kind) continue;
    const framework = /\bjax|XlaRuntimeError/.test(line) ? 'jax' : kind[1];
    const bytes = byteCount(line, /trying to allocate ([\d,]+) bytes/) ?? byteCount(line, /allocating ([\d,]+) bytes/);
    const requested =
      capture(line, new RegExp(`Tried to allocate ${SIZE_TEXT}`)) ??
      capture(line, new RegExp(`trying to allocate ${SIZE_TEXT}`)) ??
      (bytes !== null ? formatBytes(bytes) : null);
    const otherProcesses = [...line.matchAll(new RegExp(`Process (\\d+) has ${SIZE_TEXT} memory in use`, 'g'))].map(
      (m) => ({ pid: Number(m[1]), amount: m[2] as string }),
    );
    return {
      line,
      framework,
      requested,
      free:
        capture(line, new RegExp(`of which ${FREE_TEXT} is free`)) ?? capture(line, new RegExp(`${FREE_TEXT} free;`)),
      total:
        // torch 2.1 printed "total capacty" (sic)
        capture(line, new RegExp(`total capac(?:i)?ty of ${SIZE_TEXT}`)) ??
        capture(line, new RegExp(`${SIZE_TEXT} total capacity`)),
      otherProcesses,
      fragmented: /reserved but unallocated memory is large|max_split_size_mb/.test(line),
    };
  }
  return null;
}

const HOST_MEMORY_TEXT: readonly RegExp[] = [
  /DefaultCPUAllocator: can't allocate memory/,
  /std::bad_alloc/,
  /Cannot allocate memory/,
];

/**
 * The latest sign that the host refused memory: Python's `MemoryError` (numpy's
 * `_ArrayMemoryError` too), torch's CPU allocator, C++ `std::bad_alloc`, ENOMEM.
 */
export function findHostMemoryError(
  lines: readonly string[],
  exceptions: readonly PyException[],
): HostMemoryHit | null {
  const exc = [...exceptions]
    .reverse()
    .find((e) => e.name === 'MemoryError' || e.name.endsWith('._ArrayMemoryError') || e.name === '_ArrayMemoryError');
  const text = latest(lines, HOST_MEMORY_TEXT);
  const pick = exc && (!text || exc.index >= text.index) ? exc.text : text?.line;
  if (pick === undefined) return null;
  const bytes = byteCount(pick, /you tried to allocate ([\d,]+) bytes/);
  return {
    line: pick,
    requested:
      capture(pick, new RegExp(`Unable to allocate ${SIZE_TEXT}`)) ?? (bytes !== null ? formatBytes(bytes) : null),
  };
}

const LIMIT_PATTERNS: readonly (readonly [RegExp, LimitCause, boolean])[] = [
  [/No space left on device|\[Errno 28\]|\bENOSPC\b/, 'disk_full', false],
  [/Disk quota exceeded|\[Errno 122\]|\bEDQUOT\b/, 'disk_full', true],
  [/Too many open files|\[Errno 24\]|\bEMFILE\b/, 'open_files', false],
  [/File too large|\[Errno 27\]|\bEFBIG\b|File size limit exceeded/, 'file_size', false],
  [
    new RegExp(
      [
        'fork: (?:retry: )?Resource temporarily unavailable',
        'Cannot fork',
        "can't start new thread",
        String.raw`pthread_create\b.*(?:failed|Resource temporarily unavailable)`,
        'fork failed',
        String.raw`\bfork\(\) failed`,
      ].join('|'),
      'i',
    ),
    'pids',
    false,
  ],
];

/**
 * EAGAIN as Python prints it. A non-blocking socket says the same, so it is a process limit only
 * where the traceback that raised it forks or starts a thread, or where the pids cgroup refused.
 */
const EAGAIN = /\[Errno 11\] Resource temporarily unavailable/;
const FORK_CONTEXT = /\bfork|Popen|_launch\b|spawn|start_new_thread|pthread|_start_thread|\.start\(\)/;
const TRACEBACK_HEAD = /^Traceback \(most recent call last\):$/;

/** Whether the traceback that ends at line `end` shows a fork or a thread start. */
function forkInTraceback(lines: readonly string[], end: number): boolean {
  for (let i = end - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (FORK_CONTEXT.test(line)) return true;
    if (TRACEBACK_HEAD.test(line) || !/^\s/.test(line)) return false;
  }
  return false;
}

/**
 * The latest sign of a resource limit: disk full (or quota), too many processes, too many open
 * files, file too large. `forkRefused` says the pids cgroup refused a fork, so a bare EAGAIN counts.
 */
export function findLimitHit(lines: readonly string[], forkRefused: boolean): LimitHit | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    const hit = LIMIT_PATTERNS.find(([re]) => re.test(line));
    if (hit) return { cause: hit[1], line, quota: hit[2] };
    if (EAGAIN.test(line) && (forkRefused || forkInTraceback(lines, i))) return { cause: 'pids', line, quota: false };
  }
  return null;
}

const CUDA_UNAVAILABLE: readonly (readonly [RegExp, string])[] = [
  [/Torch not compiled with CUDA enabled/, 'cpu_build'],
  [/CUDA driver version is insufficient|NVIDIA driver on your system is too old/, 'driver'],
  [/Found no NVIDIA driver|NVIDIA-SMI has failed/, 'no_driver'],
  [/No CUDA GPUs are available|no CUDA-capable device is detected|CUDA_ERROR_NO_DEVICE|cudaErrorNoDevice/, 'no_device'],
];

/** A missing-module or import failure read from one exception. */
function importCause(e: PyException): ProgramCauseHit | null {
  if (e.name !== 'ModuleNotFoundError' && e.name !== 'ImportError') return null;
  const base = { cause: 'missing_module' as const, line: e.text, file: null, lineNo: null, detail: null };
  const named = /No module named '?([\w.]+)'?/.exec(e.message);
  if (named) return { ...base, module: named[1] as string, importName: null, library: null };
  const cannot = /cannot import name '([^']+)' from '([\w.]+)'/.exec(e.message);
  if (cannot) return { ...base, module: cannot[2] as string, importName: cannot[1] as string, library: null };
  const lib = /([\w.+-]+\.so(?:\.[\w.]+)?): cannot open shared object file/.exec(e.message);
  return { ...base, module: null, importName: null, library: lib?.[1] ?? null };
}

/** A Python cause read from one exception line, or null. */
function exceptionCause(e: PyException): ProgramCauseHit | null {
  const none = { module: null, importName: null, library: null, detail: null };
  if (e.name === 'SyntaxError' || e.name === 'IndentationError' || e.name === 'TabError') {
    return { ...none, cause: 'syntax_error', line: e.text, file: e.file, lineNo: e.line };
  }
  if (e.name === 'FileNotFoundError') {
    const path = /No such file or directory: '(.+)'$/.exec(e.message)?.[1] ?? null;
    return { ...none, cause: 'file_not_found', line: e.text, file: path, lineNo: null };
  }
  return importCause(e);
}

/** A cause read from a plain line (CUDA unavailable, shell "command not found"), or null. */
function lineCause(line: string): ProgramCauseHit | null {
  const none = { module: null, importName: null, library: null, file: null, lineNo: null };
  const cuda = CUDA_UNAVAILABLE.find(([re]) => re.test(line));
  if (cuda) return { ...none, cause: 'cuda_unavailable', line, detail: cuda[1] };
  const cmd =
    /^(?:.*?: )?(?:line \d+: )?([^\s:]+): command not found$/.exec(line) ??
    /^\S+: \d+: ([^\s:]+): not found$/.exec(line);
  if (cmd) return { ...none, cause: 'command_not_found', line, detail: cmd[1] as string };
  return containerCause(line);
}

/**
 * What a locked-down container refuses (--isolation docker): a write outside the writable folders
 * (EROFS; `file` is the path when the message names it), a connection or name lookup without a
 * network. The classifier names no_network only for a job that ran in a container.
 */
function containerCause(line: string): ProgramCauseHit | null {
  const none = { module: null, importName: null, library: null, file: null, lineNo: null, detail: null };
  if (/Read-only file system/.test(line)) {
    const path =
      /Read-only file system: '([^']+)'/.exec(line)?.[1] ??
      /(?:cannot create|cannot touch) '?([^':]+)'?:/.exec(line)?.[1];
    return { ...none, cause: 'read_only_fs', line, file: path ?? null };
  }
  if (
    /Network is unreachable|Temporary failure in name resolution|Name or service not known|Could not resolve host|Errno -3\]/.test(
      line,
    )
  )
    return { ...none, cause: 'no_network', line };
  return null;
}

/**
 * The latest cause the program itself reports: a syntax error, a missing module or failed import,
 * CUDA unavailable, a data file not found, or a command the shell could not find.
 */
export function findProgramCause(lines: readonly string[], exceptions: readonly PyException[]): ProgramCauseHit | null {
  const byIndex = new Map(exceptions.map((e) => [e.index, e] as const));
  for (let i = lines.length - 1; i >= 0; i--) {
    const exc = byIndex.get(i);
    const hit = (exc ? exceptionCause(exc) : null) ?? lineCause(lines[i] as string);
    if (hit) return hit;
  }
  return null;
}

const NOISE: readonly RegExp[] = [
  /^\s*$/,
  /^[\s^~]+$/, // Python 3.11 caret markers
  /^\s*\d+%\|/, // tqdm bars
  new RegExp(
    String.raw`^(?:.*: )?(?:line \d+: )?\s*(?:\d+\s+)?(?:` +
      'Aborted|Segmentation fault|Killed|Terminated|Bus error|Illegal instruction|Floating point exception|' +
      'CPU time limit exceeded|File size limit exceeded' +
      String.raw`)(?: \(core dumped\))?(?:\s.*)?$`,
  ),
  /^\s*warnings\.warn\(/,
  /^\s*\[Previous line repeated \d+ more times\]$/,
  /^\.\/run\.sh: line \d+: /, // the supervisor's own complaints (the job's script is never ./run.sh)
];

/** How close to the end (in non-blank lines) an exception must be to count as the final one. */
const FINAL_EXCEPTION_WINDOW = 15;

/**
 * The line a person would quote to say why it failed: the final Python exception when the tail
 * ends in a traceback, otherwise the last line that is not a progress bar or a shell's
 * "Segmentation fault (core dumped)" echo. Null when stderr says nothing.
 */
export function lastMeaningfulLine(lines: readonly string[], exceptions: readonly PyException[]): string | null {
  const last = exceptions[exceptions.length - 1];
  if (last) {
    const after = lines.slice(last.index + 1).filter((l) => l.trim() !== '').length;
    if (after <= FINAL_EXCEPTION_WINDOW) return last.text.trim();
  }
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (!NOISE.some((re) => re.test(line))) return line.trim();
  }
  return null;
}

const CHAIN = new RegExp(
  '^(?:During handling of the above exception, another exception occurred:' +
    '|The above exception was the direct cause of the following exception:)$',
);
/** Exceptions that only report that another process failed: its own error is further up. */
const WRAPPERS = /(?:^|\.)(?:ChildFailedError|CalledProcessError|BrokenProcessPool)$/;

/** Whether the next non-blank line after `i` is a chained-exception separator. */
function chainFollows(lines: readonly string[], i: number): boolean {
  for (let j = i + 1; j < lines.length; j++) {
    const line = lines[j] as string;
    if (line.trim() !== '') return CHAIN.test(line);
  }
  return false;
}

/**
 * Where the program's final error report starts: the first line of the traceback chain that ends
 * in the final exception (chained causes included), when the tail ends in one. Null when the
 * tail does not end in a Python exception, or ends in one that only wraps another process's
 * failure: then every line counts. Lines above the final report are the program's earlier
 * output, such as a caught and logged "CUDA out of memory" it recovered from.
 */
export function finalReportStart(lines: readonly string[], exceptions: readonly PyException[]): number | null {
  const last = exceptions[exceptions.length - 1];
  if (!last || WRAPPERS.test(last.name)) return null;
  const after = lines.slice(last.index + 1).filter((l) => l.trim() !== '').length;
  if (after > FINAL_EXCEPTION_WINDOW) return null;
  let i = last.index;
  while (i > 0) {
    const prev = lines[i - 1] as string;
    const partOfReport =
      prev.trim() === '' ||
      /^\s/.test(prev) ||
      TRACEBACK_HEAD.test(prev) ||
      CHAIN.test(prev) ||
      (EXCEPTION_LINE.test(prev) && chainFollows(lines, i - 1));
    if (!partOfReport) break;
    i--;
  }
  return i;
}

/**
 * Reads a stderr tail once for everything the classifier may ask of it. When the tail ends in a
 * Python traceback, only that final report is searched for causes (see finalReportStart), so a
 * recovered error logged earlier does not decide the verdict. `forkRefused` says the pids cgroup
 * refused a fork (see findLimitHit).
 */
export function analyzeStderr(tail: string, forkRefused: boolean): StderrFindings {
  const lines = stderrLines(tail);
  const exceptions = pythonExceptions(lines);
  const start = finalReportStart(lines, exceptions);
  const scoped = start === null ? lines : lines.slice(start);
  const scopedExceptions = start === null ? exceptions : pythonExceptions(scoped);
  return {
    lines,
    exceptions,
    gpuOom: findGpuOom(scoped),
    hostMemory: findHostMemoryError(scoped, scopedExceptions),
    limit: findLimitHit(scoped, forkRefused),
    programCause: findProgramCause(scoped, scopedExceptions),
    lastLine: lastMeaningfulLine(lines, exceptions),
  };
}
