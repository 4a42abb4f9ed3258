/**
 * Concrete fixes for each way a job can end, most useful first. Pure: every function takes the
 * facts it needs and returns sentences a user can act on (often a command to run).
 */
import { formatDuration, formatSizeOption } from './format.js';
import type { GpuOomHit, LimitHit, ProgramCauseHit } from './stderr-patterns.js';
import { SIG, signalName } from './signals.js';
import type { Limits } from './types.js';

/** Who and where, for phrasing hints; both optional because the classifier may not know them. */
export interface HintTarget {
  node: string | null;
  jobId: string | null;
}

/** "on node gpu1", or "on the node" when the node is unknown. */
function onNode(t: HintTarget): string {
  return t.node ? `on node ${t.node}` : 'on the node';
}

/** `gpuq logs ID --stderr` with the job's id when known. */
function logsCommand(t: HintTarget, stream: 'stderr' | 'stdout'): string {
  return `gpuq logs ${t.jobId ?? 'ID'} --${stream}`;
}

/** Import names whose pip package is named differently. */
const PIP_NAMES: Readonly<Record<string, string>> = {
  sklearn: 'scikit-learn',
  skimage: 'scikit-image',
  cv2: 'opencv-python-headless',
  PIL: 'pillow',
  yaml: 'pyyaml',
  bs4: 'beautifulsoup4',
  attr: 'attrs',
  dateutil: 'python-dateutil',
  dotenv: 'python-dotenv',
  Crypto: 'pycryptodome',
  jwt: 'PyJWT',
  fitz: 'PyMuPDF',
  docx: 'python-docx',
  magic: 'python-magic',
  'google.protobuf': 'protobuf',
};

/** The pip package that provides an import name ("sklearn.metrics" → "scikit-learn"). */
export function pipPackageFor(moduleName: string): string {
  const top = moduleName.split('.')[0] ?? moduleName;
  const twoLevel = moduleName.split('.').slice(0, 2).join('.');
  return PIP_NAMES[twoLevel] ?? PIP_NAMES[top] ?? top;
}

/** Hints for host memory: raise --memory, then ways to need less. */
export function memoryHints(limits: Limits, peakRssBytes: number | null, requested: string | null = null): string[] {
  const base = limits.memoryBytes ?? peakRssBytes;
  const raise =
    limits.memoryBytes !== null && base !== null
      ? `raise the limit if the node has the RAM: gpuq submit --memory ${formatSizeOption(base * 2)} …`
      : 'it used all the memory the node could give: run it on a node with more RAM, ' +
        'or set --memory so it fails early and clearly';
  const asked =
    requested !== null
      ? [`one allocation asked for ${requested} at once: check the shapes and sizes the program computes`]
      : [];
  return [
    ...asked,
    raise,
    'stream the data instead of loading it whole: read it in chunks, ' +
      'or memory-map arrays (numpy.load(..., mmap_mode="r"))',
    'use smaller dtypes (float32 instead of float64) and free large objects you no longer need (del x; gc.collect())',
    'fewer DataLoader / multiprocessing workers: each one holds its own copy of what it touches',
  ];
}

/** Hints when the program succeeded although one of its child processes was OOM-killed. */
export function childOomHints(limits: Limits): string[] {
  const raise =
    limits.memoryBytes !== null
      ? `, or raise --memory (e.g. --memory ${formatSizeOption(limits.memoryBytes * 2)})`
      : '';
  return [
    `check that the results are complete: a worker or subprocess was killed for ` +
      `memory while the main process carried on${raise}`,
    'use fewer DataLoader / multiprocessing workers, each holds its own copy of the data',
  ];
}

/** Hints for a GPU out-of-memory error, tailored to the framework and to what torch reported. */
export function gpuOomHints(hit: GpuOomHit): string[] {
  const hints: string[] = [];
  if (hit.otherProcesses.length > 0) {
    hints.push(
      'other processes held memory on that GPU: check `nvidia-smi` on the node and ' +
        'wait for a free GPU or ask their owners, or pick another GPU/node',
    );
  }
  hints.push('use a smaller batch size (accumulate gradients over several steps to keep the effective batch)');
  if (hit.framework === 'jax') {
    hints.push(
      'JAX preallocates 75% of the GPU: set XLA_PYTHON_CLIENT_PREALLOCATE=false or ' +
        'XLA_PYTHON_CLIENT_MEM_FRACTION (gpuq submit --env …)',
    );
  } else if (hit.framework === 'tensorflow') {
    hints.push('let TensorFlow grow its GPU memory as needed: tf.config.experimental.set_memory_growth(gpu, True)');
  }
  hints.push('use mixed precision: torch.autocast("cuda", dtype=torch.bfloat16), or load the model in bf16/fp16');
  hints.push(
    'trade compute for memory with gradient checkpointing (torch.utils.checkpoint / ' +
      'model.gradient_checkpointing_enable())',
  );
  if (hit.fragmented) {
    hints.push('reduce fragmentation: gpuq submit --env PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True …');
  }
  hints.push(
    'free memory between phases: del tensors you no longer need, ' +
      'then torch.cuda.empty_cache(); run evaluation under torch.no_grad()',
  );
  if (hit.otherProcesses.length === 0) {
    hints.push('check `nvidia-smi` on the node for other processes holding the GPU');
  }
  return hints;
}

/**
 * Hints after the wall-clock limit, in the order the evidence supports: a program that ignored
 * SIGTERM is told to handle it first; `looksIdle` (only from samples taken before the limit
 * fired: a program that ignores SIGTERM idles through the grace period by construction) adds the
 * deadlock hint next; then checkpointing and profiling.
 */
export function timeoutHints(limits: Limits, killedAfterGrace: boolean, looksIdle: boolean): string[] {
  const hints: string[] = [];
  if (killedAfterGrace) {
    hints.push(
      `it ignored SIGTERM: handle SIGTERM (signal.signal(signal.SIGTERM, …)) ` +
        `to save its state and exit within the ${formatDuration(limits.graceS)} grace ` +
        `period, or raise --grace`,
    );
  }
  if (looksIdle) {
    hints.push(
      'it was idle before the limit fired (no CPU or GPU use): look for a deadlock, a hung DataLoader worker or a read from stdin',
    );
  }
  hints.push(
    `save checkpoints and resume from the last one, or raise the limit: ` +
      `gpuq submit --timeout ${formatDuration(limits.timeoutS * 2)} …`,
  );
  hints.push('profile a short run to see where the time goes (is the GPU busy? `gpuq watch` shows utilisation)');
  return hints;
}

/**
 * Hints when a process of the job was killed for memory and the job then ran into the
 * wall-clock limit: the memory hints, with the usual reason for the hang (a process pool that
 * waits for ever for a worker the OOM killer took) second.
 */
export function oomThenTimeoutHints(limits: Limits, peakRssBytes: number | null, killedAfterGrace: boolean): string[] {
  const [raise, ...rest] = memoryHints(limits, peakRssBytes);
  const sigterm = killedAfterGrace
    ? [`it also ignored SIGTERM: handle it to exit within the ${formatDuration(limits.graceS)} grace period`]
    : [];
  return [
    raise as string,
    'a multiprocessing.Pool waits for ever for a worker that was killed: use ' +
      'concurrent.futures.ProcessPoolExecutor, which raises BrokenProcessPool at once, so the job ' +
      'fails instead of hanging until the timeout',
    ...rest,
    ...sigterm,
  ];
}

/**
 * Hints when the job exited 0 although a limit stopped one of its processes or refused it
 * something: check the results, then the hints for that limit.
 */
export function limitRefusedHints(limitSpecific: string[]): string[] {
  return ['check that the results are complete: the program carried on after the limit refused it', ...limitSpecific];
}

/** Hints after the CPU-time limit: it counts every thread, so cap threads or raise it. */
export function cpuTimeHints(limits: Limits): string[] {
  const raise =
    limits.cpuTimeS !== null
      ? `raise the limit: gpuq submit --cpu-time ${formatDuration(limits.cpuTimeS * 2)} …`
      : 'the node enforces a CPU-time limit (ulimit -t): ask its admin or use another node';
  return [
    raise,
    'CPU time adds up over all threads: cap them (OMP_NUM_THREADS, MKL_NUM_THREADS, ' +
      'torch.set_num_threads) or move the work to the GPU',
  ];
}

/** Hints for the resource limits read from stderr or the pids cgroup. */
export function limitHints(
  hit: Pick<LimitHit, 'cause' | 'quota'> & { line?: string },
  limits: Limits,
  t: HintTarget,
): string[] {
  switch (hit.cause) {
    case 'disk_full':
      if (hit.line !== undefined && /\/dev\/shm|torch_\d+_\d+|shared memory|\bshm\b/i.test(hit.line)) {
        return [
          'shared memory (/dev/shm) is full, not the disk: ' +
            'PyTorch DataLoader workers pass batches through it; ' +
            'use fewer workers (num_workers) or smaller batches',
          `check \`df -h /dev/shm\` ${onNode(t)}; in docker, give the container a larger --shm-size`,
        ];
      }
      return [
        hit.quota
          ? `a disk quota is exhausted ${onNode(t)}: delete old outputs and checkpoints, or ask for a larger quota`
          : `free disk space ${onNode(t)} (see the disk column of \`gpuq nodes\`): ` +
            `delete old job folders, checkpoints and caches`,
        'write less: keep only the last checkpoints, compress outputs, ' +
          'point caches (HF_HOME, TORCH_HOME) at a larger disk',
      ];
    case 'pids':
      return [
        limits.pids !== null
          ? `raise the process limit: gpuq submit --pids ${limits.pids * 2} …`
          : 'the node limits processes per user: use fewer processes or ask its admin',
        'use fewer worker processes and threads (DataLoader num_workers, ' +
          'multiprocessing.Pool(processes=N), OMP_NUM_THREADS)',
        'reap what you start: join threads, wait() on subprocesses, close pools',
      ];
    case 'open_files':
      return [
        'close files and sockets you no longer need (use `with open(...)`); ' +
          'a loop that opens without closing leaks one per pass',
        limits.files !== null
          ? `raise the limit: gpuq submit --files ${Math.max(limits.files * 2, 1024)} …`
          : 'raise the descriptor limit with --files (e.g. --files 4096)',
      ];
    case 'file_size':
      return [
        limits.fileSizeBytes !== null
          ? `raise the limit: gpuq submit --file-size ${formatSizeOption(limits.fileSizeBytes * 2)} …`
          : 'the node limits file size (ulimit -f) or its filesystem cannot hold files that large',
        'write the output in smaller shards, or compress it',
      ];
  }
}

/** Hints for a failed import: install the package, match versions, or the system library. */
export function missingModuleHints(hit: ProgramCauseHit, t: HintTarget): string[] {
  if (hit.library !== null) {
    const headless = /^libGL\.so/.test(hit.library)
      ? ['OpenCV needs libGL: install opencv-python-headless instead of opencv-python']
      : [];
    return [
      ...headless,
      `install the system package that provides ${hit.library} ${onNode(t)} (apt-file search ${hit.library})`,
    ];
  }
  if (hit.module !== null && hit.importName !== null) {
    const pkg = pipPackageFor(hit.module);
    return [
      `the node's ${hit.module} is a different version from yours: ` +
        `compare \`python3 -m pip show ${pkg}\` on both and pin the version you need ` +
        `(python3 -m pip install '${pkg}==…')`,
    ];
  }
  if (hit.module !== null) {
    const pkg = pipPackageFor(hit.module);
    return [
      `install ${pkg} ${onNode(t)}: python3 -m pip install ${pkg}`,
      'if it is installed there, the job runs another Python: ' +
        'set the node\'s "python" in the gpuq config to the interpreter (or venv) that has it',
    ];
  }
  return [`read the full import error: ${logsCommand(t, 'stderr')}`];
}

/** The last part of a path, for naming the user's file. */
function baseName(path: string): string {
  return path.split('/').pop() ?? path;
}

/** Hints for a syntax error: where it is, how to check locally, and the Python-version trap. */
export function syntaxErrorHints(hit: ProgramCauseHit): string[] {
  const where = hit.file !== null ? `${baseName(hit.file)}${hit.lineNo !== null ? `:${hit.lineNo}` : ''}` : null;
  const file = hit.file !== null ? baseName(hit.file) : 'FILE';
  return [
    where !== null ? `fix the syntax at ${where}` : 'fix the syntax error the log shows',
    `check before submitting: python3 -m py_compile ${file}`,
    "if it compiles on your machine, the node's Python is older than yours (match " +
      'statements need 3.10, f-string nesting 3.12): check `python3 --version` there',
  ];
}

/** Hints when CUDA could not be used at all. */
export function cudaUnavailableHints(hit: ProgramCauseHit, limits: Limits): string[] {
  const hints: string[] = [];
  if (limits.gpus === 0) hints.push('no GPU was requested: gpuq submit --gpus 1 …');
  if (hit.detail === 'cpu_build')
    hints.push("the node's torch is a CPU-only build: install a CUDA build of torch there");
  if (hit.detail === 'driver') {
    hints.push(
      "the node's NVIDIA driver is older than the CUDA your torch/jax was built for: " +
        'install a build for an older CUDA (e.g. the cu118 wheels) or update the driver',
    );
  }
  if (hit.detail === 'no_driver') hints.push('the node has no working NVIDIA driver: check `nvidia-smi` there');
  hints.push('do not set CUDA_VISIBLE_DEVICES yourself: gpuq sets it to the GPUs it assigned');
  return hints;
}

/** Hints when the program could not find a data file. */
export function fileNotFoundHints(hit: ProgramCauseHit): string[] {
  const path = hit.file ?? 'the file';
  const relative = hit.file !== null && !hit.file.startsWith('/');
  return [
    relative
      ? `the job runs in its own folder on the node, so '${path}' is looked up there: ` +
        `use the competition's data directory or an absolute path on the node`
      : `${path} does not exist on the node: check the path there, or use the competition's data directory`,
  ];
}

/** Hints for a write the read-only file system refused (a container's root, the data folder). */
export function readOnlyFsHints(hit: ProgramCauseHit, container: boolean): string[] {
  if (!container) return ["the node mounts that folder read-only: write into the job's own folder instead"];
  const data = hit.file?.startsWith('/gpuq/data') ?? false;
  return [
    data
      ? 'the data folder ($GPUQ_DATA) is read-only: write copies into the working folder'
      : 'in the container only the working folder (/gpuq/work, the current directory) and /tmp are writable: write there',
    'use relative paths or $TMPDIR for temporary files',
  ];
}

/** Hints for a container without a network: nothing can be downloaded while the job runs. */
export function noNetworkHints(): string[] {
  return [
    'jobs under --isolation docker have no network: ship what it downloads with --include, or bake it into the image',
    'read datasets from $GPUQ_DATA; a competition can allow the network with "network": true',
  ];
}

/** Hints when the shell could not find a command (exit 127). */
export function commandNotFoundHints(hit: ProgramCauseHit, t: HintTarget): string[] {
  const cmd = hit.detail ?? 'the command';
  return [`install ${cmd} ${onNode(t)}, or set the node's "python" in the gpuq config to its full path`];
}

/** Hints for a plain failure: read the error. */
export function failedHints(t: HintTarget, stderrEmpty: boolean): string[] {
  return stderrEmpty
    ? [`it wrote nothing to stderr: look at its output with ${logsCommand(t, 'stdout')}`]
    : [`read the whole error: ${logsCommand(t, 'stderr')}`, 'run it locally on a small input to reproduce'];
}

/** Hints for a death by a signal gpuq did not send. */
export function signalHints(signal: number, t: HintTarget, stderr: string): string[] {
  switch (signal) {
    case SIG.SEGV:
      return [
        'a native extension crashed: rerun with gpuq submit --env PYTHONFAULTHANDLER=1 … ' +
          'to see the Python line it died on',
        "check that compiled packages (torch, numpy, your extensions) match the node's Python, CUDA and driver",
        'very deep recursion after sys.setrecursionlimit overflows the C stack: make it iterative',
      ];
    case SIG.ABRT:
      return [
        /device-side assert/.test(stderr)
          ? 'a CUDA device-side assert (often an index or label out of range): ' +
            'rerun with --env CUDA_LAUNCH_BLOCKING=1 to see where'
          : 'an assertion or an uncaught C++ exception aborted it: the stderr lines just before the abort say which',
        'rerun with gpuq submit --env PYTHONFAULTHANDLER=1 … to see the Python line',
      ];
    case SIG.BUS:
      return [
        'often shared memory (/dev/shm) running out: PyTorch DataLoader workers pass ' +
          'batches through it; use fewer workers or a larger /dev/shm (docker --shm-size)',
        'or a memory-mapped file that was truncated while in use',
      ];
    case SIG.ILL:
      return ["a binary built for a newer CPU than the node's (AVX-512, …): install a generic build of the package"];
    case SIG.FPE:
      return ['an integer division by zero in native code: check the inputs of the failing extension'];
    case SIG.KILL:
      return [
        `someone or something killed it: an admin, or the node's OOM killer outside ` +
          `gpuq's view; check \`dmesg\` (or journalctl -k) ${onNode(t)} for "Killed process"`,
        'set --memory so gpuq watches memory and names an out-of-memory death itself',
      ];
    case SIG.TERM:
      return [
        `something outside gpuq asked it to stop (an admin, a node shutdown, ` +
          `another scheduler): check the node's logs (journalctl) around the end time`,
        'handle SIGTERM to save a checkpoint, so a rerun can resume',
      ];
    case SIG.INT:
      return ['it was interrupted (SIGINT, as Ctrl-C sends) from outside gpuq; resubmit it'];
    case SIG.PIPE:
      return ['it wrote to a pipe whose reader had gone: check pipes and sockets in the program'];
    default:
      return [`${signalName(signal)} came from outside gpuq or from the program itself: check what sends it`];
  }
}

/** Hints for a job whose node rebooted or whose supervisor vanished. */
export function lostHints(reason: 'rebooted' | 'vanished', t: HintTarget): string[] {
  const why =
    reason === 'rebooted'
      ? `find out why the node rebooted (\`journalctl --list-boots\`, \`last -x reboot\` ${onNode(t)})`
      : `check \`dmesg\` ${onNode(t)}: the supervisor may have been OOM-killed, or killed by an admin`;
  return [why, 'resubmit the job; save checkpoints so a rerun can resume where it stopped'];
}
