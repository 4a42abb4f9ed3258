/**
 * Stderr texts as real programs print them (Python 3.11 tracebacks captured on this machine,
 * CUDA/torch messages as torch 1.x/2.x, cuBLAS, CuPy and PyCUDA print them), and builders for
 * the files a supervisor writes. Shared by classify.test.ts and stderr-patterns.test.ts.
 */
import type { JobProbe, Limits, MonitorFile, StatusFile } from '../../src/core/types.js';
import { builtinLimits } from '../../src/core/limits.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

/** The built-in limits, memory unlimited. */
export const LIMITS: Limits = { ...builtinLimits(), memoryBytes: null };

/** status.json of a job that exited with `exitCode`, no limit fired. */
export function exited(exitCode: number, over: Partial<StatusFile> = {}): StatusFile {
  return {
    version: 1,
    state: 'exited',
    supervisorPid: 100,
    pid: 101,
    pgid: 101,
    bootId: 'boot-a',
    startedAtMs: 1_700_000_000_000,
    endedAtMs: 1_700_000_060_000,
    exitCode,
    signal: exitCode > 128 ? exitCode - 128 : null,
    timedOut: false,
    cancelled: false,
    limitFired: null,
    killedAfterGrace: false,
    cpuSeconds: 12.5,
    cgroup: null,
    oomKills: null,
    pidsRefused: null,
    kernelOom: [],
    leftovers: 0,
    ...over,
  };
}

export function monitor(over: Partial<MonitorFile> = {}): MonitorFile {
  return {
    version: 1,
    samples: 60,
    peakRssBytes: 300 * MiB,
    peakProcs: 3,
    peakThreads: 12,
    peakOpenFiles: 20,
    peakFolderBytes: 2 * MiB,
    peakGpuMemBytes: null,
    memoryWatchFired: false,
    memoryWatchRssBytes: null,
    ...over,
  };
}

export function probe(
  status: StatusFile | null,
  stderrTail = '',
  over: Partial<JobProbe & { missing: boolean }> = {},
): JobProbe & { missing: boolean } {
  return {
    status,
    monitor: monitor(),
    stderrTail,
    recentSamples: [],
    supervisorAlive: false,
    bootId: 'boot-a',
    missing: false,
    ...over,
  };
}

export const TB = {
  missingModule: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 3, in <module>
    import lightgbm as lgb
ModuleNotFoundError: No module named 'lightgbm'
`,
  missingSubmodule: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 1, in <module>
    from sklearn.metrics import roc_auc_score
ModuleNotFoundError: No module named 'sklearn'
`,
  cannotImportName: `Traceback (most recent call last):
  File "/tmp/tb/d.py", line 1, in <module>
    from os import nosuchthing
ImportError: cannot import name 'nosuchthing' from 'os' (/usr/lib/python3.11/os.py)
`,
  libGL: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 2, in <module>
    import cv2
  File "/usr/local/lib/python3.11/dist-packages/cv2/__init__.py", line 181, in <module>
    bootstrap()
  File "/usr/local/lib/python3.11/dist-packages/cv2/__init__.py", line 153, in bootstrap
    native_module = importlib.import_module("cv2")
                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/importlib/__init__.py", line 126, in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
ImportError: libGL.so.1: cannot open shared object file: No such file or directory
`,
  syntaxError: `  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 14
    def predict(x:
               ^
SyntaxError: '(' was never closed
`,
  indentationError: `  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 7
    return y
IndentationError: unexpected indent
`,
  memoryError: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 9, in <module>
    x = bytearray(10**13)
        ^^^^^^^^^^^^^^^^^
MemoryError
`,
  numpyMemoryError:
    `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 5, in <module>
    a = np.zeros((1_000_000, 1_000_000))
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
numpy.core._exceptions._ArrayMemoryError: ` +
    `Unable to allocate 7.28 TiB for an array with shape (1000000, 1000000) ` +
    `and data type float64
`,
  torchCpuAlloc:
    `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/train.py", line 22, in <module>
    big = torch.empty(8 * 1024**3)
          ^^^^^^^^^^^^^^^^^^^^^^^^
RuntimeError: [enforce fail at alloc_cpu.cpp:83] err == 0. DefaultCPUAllocator: ` +
    `can't allocate memory: you tried to allocate 34359738368 bytes. ` +
    `Error code 12 (Cannot allocate memory)
`,
  torchOom2:
    `Epoch 1:  12%|█▏        | 120/1000 [00:41<05:02,  2.91it/s]
Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/train.py", line 88, in <module>
    loss = model(x, y)
           ^^^^^^^^^^^
  File "/usr/local/lib/python3.11/dist-packages/torch/nn/modules/module.py", line 1736, in _wrapped_call_impl
    return self._call_impl(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/local/lib/python3.11/dist-packages/torch/nn/functional.py", line 2140, in softmax
    ret = input.softmax(dim)
          ^^^^^^^^^^^^^^^^^^
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB. ` +
    `GPU 0 has a total capacity of 79.11 GiB of which 3.56 GiB is free. ` +
    `Process 40211 has 60.12 GiB memory in use. Including non-PyTorch memory, ` +
    `this process has 15.40 GiB memory in use. ` +
    `Of the allocated memory 14.80 GiB is allocated by PyTorch, ` +
    `and 152.45 MiB is reserved by PyTorch but unallocated. ` +
    `If reserved but unallocated memory is large try setting ` +
    `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation. ` +
    ` See documentation for Memory Management  ` +
    `(https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)
`,
  torchOomCapacty:
    `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/train.py", line 40, in <module>
    out = F.grid_sample(img, grid)
          ^^^^^^^^^^^^^^^^^^^^^^^^
torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. ` +
    `GPU 0 has a total capacty of 6.00 GiB of which 0 bytes is free. ` +
    `Of the allocated memory 2.93 GiB is allocated by PyTorch, ` +
    `and 2.30 GiB is reserved by PyTorch but unallocated. ` +
    `If reserved but unallocated memory is large try setting max_split_size_mb to ` +
    `avoid fragmentation.  See documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF
`,
  torchOom1:
    `Traceback (most recent call last):
  File "train.py", line 61, in <module>
    output = net(images)
RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; ` +
    `15.78 GiB total capacity; 12.50 GiB already allocated; 1.20 GiB free; ` +
    `13.00 GiB reserved in total by PyTorch) If reserved memory is >> allocated ` +
    `memory try setting max_split_size_mb to avoid fragmentation. ` +
    ` See documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF
`,
  cublas: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/train.py", line 30, in <module>
    y = x @ w
        ~~^~~
RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling \`cublasCreate(handle)\`
`,
  cupy: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solve.py", line 12, in <module>
    a = cp.zeros((200_000, 200_000))
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "cupy/_core/core.pyx", line 2379, in cupy._core.core._ndarray_init
  File "cupy/cuda/memory.pyx", line 738, in cupy.cuda.memory.alloc
  File "cupy/cuda/memory.pyx", line 1424, in cupy.cuda.memory.MemoryPool.malloc
  File "cupy_backends/cuda/api/runtime.pyx", line 144, in cupy_backends.cuda.api.runtime.check_status
cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorMemoryAllocation: out of memory
`,
  jax: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/train.py", line 50, in <module>
    params = init(key)
             ^^^^^^^^^
jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 17179869184 bytes.
`,
  diskFull: `Saving checkpoint to ckpt/epoch_3.pt
Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/train.py", line 120, in <module>
    f.write(blob)
OSError: [Errno 28] No space left on device
`,
  shmFull: `Traceback (most recent call last):
  File "/usr/local/lib/python3.11/dist-packages/torch/utils/data/dataloader.py", line 1251, in _try_get_data
    data = self._data_queue.get(timeout=timeout)
RuntimeError: unable to write to file </torch_2816_3479387155_0>: No space left on device (28)
`,
  forkEagain: `Traceback (most recent call last):
  File "/tmp/tb/e.py", line 4, in <module>
    pid = os.fork()
          ^^^^^^^^^
BlockingIOError: [Errno 11] Resource temporarily unavailable
`,
  popenEagain: `Traceback (most recent call last):
  File "/tmp/tb/e2.py", line 4, in <module>
    ps.append(subprocess.Popen(['sleep','5']))
              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/subprocess.py", line 1024, in __init__
    self._execute_child(args, executable, preexec_fn, close_fds,
  File "/usr/lib/python3.11/subprocess.py", line 1834, in _execute_child
    self.pid = _fork_exec(
               ^^^^^^^^^^^
BlockingIOError: [Errno 11] Resource temporarily unavailable
`,
  socketEagain: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/client.py", line 9, in <module>
    data = sock.recv(4096)
           ^^^^^^^^^^^^^^^
BlockingIOError: [Errno 11] Resource temporarily unavailable
`,
  threadLimit: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 6, in <module>
    t.start()
  File "/usr/lib/python3.11/threading.py", line 957, in start
    _start_new_thread(self._bootstrap, ())
RuntimeError: can't start new thread
`,
  tooManyFiles: `Traceback (most recent call last):
  File "/tmp/tb/f.py", line 2, in <module>
OSError: [Errno 24] Too many open files: '/dev/null'
`,
  fileTooLarge: `Traceback (most recent call last):
  File "/tmp/tb/g.py", line 2, in <module>
    while True: f.write(b'x'*1048576)
                ^^^^^^^^^^^^^^^^^^^^^
OSError: [Errno 27] File too large
`,
  valueError: `Traceback (most recent call last):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 30, in <module>
    main()
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 26, in main
    raise ValueError(f"expected 10 columns, got {n}")
ValueError: expected 10 columns, got 9
`,
  deviceAssert:
    `/opt/conda/conda-bld/pytorch_1695392020201/work/aten/src/ATen/native/cuda/Loss.cu:250: ` +
    `nll_loss_forward_reduce_cuda_kernel_2d: block: [0,0,0], thread: ` +
    `[5,0,0] Assertion \`t >= 0 && t < n_classes\` failed.
terminate called after throwing an instance of 'c10::Error'
  what():  CUDA error: device-side assert triggered
`,
  cxxAbort: `terminate called after throwing an instance of 'std::runtime_error'
  what():  index out of range
`,
  badAlloc: `terminate called after throwing an instance of 'std::bad_alloc'
  what():  std::bad_alloc
`,
  segfault: `Fatal Python error: Segmentation fault

Current thread 0x00007f3a2b7fe740 (most recent call first):
  File "/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py", line 4 in <module>
`,
};
