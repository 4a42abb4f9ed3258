/**
 * The stderr finders on real texts: what each one pulls out of a tail, and what it must not.
 */
import { describe, expect, it } from 'vitest';
import {
  analyzeStderr,
  finalReportStart,
  findGpuOom,
  findHostMemoryError,
  findLimitHit,
  findProgramCause,
  lastMeaningfulLine,
  pythonExceptions,
  stderrLines,
} from '../../src/core/stderr-patterns.js';
import { TB } from '../helpers/classify-fixtures.js';

const lines = (t: string) => stderrLines(t);

describe('stderrLines', () => {
  it('drops ANSI colours, keeps the last \\r segment of a progress bar, trims the right', () => {
    expect(stderrLines('\x1b[31mError\x1b[0m  \n 10%|#  \r 50%|#####  \r100%|##########|\n')).toEqual([
      'Error',
      '100%|##########|',
      '',
    ]);
  });
});

describe('pythonExceptions', () => {
  it('finds each exception line with the frame that raised it', () => {
    const ex = pythonExceptions(lines(TB.syntaxError));
    expect(ex).toHaveLength(1);
    expect(ex[0]).toMatchObject({
      name: 'SyntaxError',
      message: "'(' was never closed",
      file: '/home/u/.gpuq/jobs/k2x9a1b3/work/solution.py',
      line: 14,
    });
  });
  it('reads a bare exception name (MemoryError) and dotted names', () => {
    expect(pythonExceptions(lines(TB.memoryError)).map((e) => e.name)).toEqual(['MemoryError']);
    expect(pythonExceptions(lines(TB.numpyMemoryError)).map((e) => e.name)).toEqual([
      'numpy.core._exceptions._ArrayMemoryError',
    ]);
  });
});

describe('findGpuOom', () => {
  const cases: [string, string, Record<string, unknown>][] = [
    [
      'torch 2.x',
      TB.torchOom2,
      {
        framework: 'torch',
        requested: '20.00 GiB',
        free: '3.56 GiB',
        total: '79.11 GiB',
        fragmented: true,
        otherProcesses: [{ pid: 40211, amount: '60.12 GiB' }],
      },
    ],
    [
      'torch 2.1 "capacty"',
      TB.torchOomCapacty,
      { framework: 'torch', requested: '1.70 GiB', free: '0 bytes', total: '6.00 GiB', fragmented: true },
    ],
    [
      'torch 1.x',
      TB.torchOom1,
      { framework: 'torch', requested: '2.00 GiB', free: '1.20 GiB', total: '15.78 GiB', fragmented: true },
    ],
    ['cuBLAS', TB.cublas, { framework: 'cuda', requested: null, free: null }],
    ['CuPy cudaErrorMemoryAllocation', TB.cupy, { framework: 'cuda' }],
    ['JAX', TB.jax, { framework: 'jax', requested: '16 GiB' }],
    ['PyCUDA', 'pycuda._driver.MemoryError: cuMemAlloc failed: out of memory\n', { framework: 'cuda' }],
    [
      'TensorFlow',
      'tensorflow.python.framework.errors_impl.ResourceExhaustedError: ' +
        'OOM when allocating tensor with shape[8192,8192] and type float on ' +
        '/job:localhost/replica:0/task:0/device:GPU:0\n',
      { framework: 'tensorflow' },
    ],
  ];
  it.each(cases)('%s', (_n, text, want) => {
    expect(findGpuOom(lines(text))).toMatchObject(want);
  });
  it('finds nothing in a host MemoryError or a plain failure', () => {
    expect(findGpuOom(lines(TB.memoryError))).toBeNull();
    expect(findGpuOom(lines(TB.valueError))).toBeNull();
  });
});

describe('findHostMemoryError', () => {
  it.each([
    ['MemoryError', TB.memoryError, null],
    ['numpy', TB.numpyMemoryError, '7.28 TiB'],
    ['torch CPU allocator', TB.torchCpuAlloc, '32 GiB'],
    ['std::bad_alloc', TB.badAlloc, null],
  ])('%s', (_n, text, requested) => {
    const l = lines(text);
    expect(findHostMemoryError(l, pythonExceptions(l))).toMatchObject({ requested });
  });
  it("does not take PyCUDA's MemoryError (a GPU error) for host memory", () => {
    const l = lines('pycuda._driver.MemoryError: cuMemAlloc failed: out of memory\n');
    expect(findHostMemoryError(l, pythonExceptions(l))).toBeNull();
  });
});

describe('findLimitHit', () => {
  it.each([
    ['No space left on device', TB.diskFull, 'disk_full', false],
    ['Disk quota exceeded', "OSError: [Errno 122] Disk quota exceeded: 'out/preds.csv'\n", 'disk_full', true],
    ['Too many open files', TB.tooManyFiles, 'open_files', false],
    ['File too large', TB.fileTooLarge, 'file_size', false],
    ['os.fork EAGAIN', TB.forkEagain, 'pids', false],
    ['Popen EAGAIN', TB.popenEagain, 'pids', false],
    ["can't start new thread", TB.threadLimit, 'pids', false],
    ['bash fork', 'run.sh: fork: retry: Resource temporarily unavailable\n', 'pids', false],
  ])('%s', (_n, text, cause, quota) => {
    expect(findLimitHit(lines(text), false)).toMatchObject({ cause, quota });
  });
  it('a socket EAGAIN is a process limit only when the pids cgroup refused forks', () => {
    expect(findLimitHit(lines(TB.socketEagain), false)).toBeNull();
    expect(findLimitHit(lines(TB.socketEagain), true)).toMatchObject({ cause: 'pids' });
  });
});

describe('findProgramCause', () => {
  it.each([
    ['ModuleNotFoundError', TB.missingModule, { cause: 'missing_module', module: 'lightgbm', importName: null }],
    ['cannot import name', TB.cannotImportName, { cause: 'missing_module', module: 'os', importName: 'nosuchthing' }],
    ['shared library', TB.libGL, { cause: 'missing_module', library: 'libGL.so.1' }],
    ['SyntaxError', TB.syntaxError, { cause: 'syntax_error', lineNo: 14 }],
    [
      'FileNotFoundError',
      "FileNotFoundError: [Errno 2] No such file or directory: 'data/train.csv'\n",
      { cause: 'file_not_found', file: 'data/train.csv' },
    ],
    [
      'CUDA unavailable',
      'AssertionError: Torch not compiled with CUDA enabled\n',
      { cause: 'cuda_unavailable', detail: 'cpu_build' },
    ],
    ['command not found', 'run.sh: line 3: nvcc: command not found\n', { cause: 'command_not_found', detail: 'nvcc' }],
  ])('%s', (_n, text, want) => {
    const l = lines(text);
    expect(findProgramCause(l, pythonExceptions(l))).toMatchObject(want);
  });
});

describe('lastMeaningfulLine', () => {
  it('is the final exception when the tail ends in a traceback', () => {
    const l = lines(TB.torchOom1);
    expect(lastMeaningfulLine(l, pythonExceptions(l))).toMatch(/^RuntimeError: CUDA out of memory/);
  });
  it("skips the shell's echo of a crash and progress bars", () => {
    const l = lines(
      'step 10 loss 0.3\n 45%|####      | 45/100\n' +
        'run.sh: line 1:  4242 Segmentation fault      (core dumped) python3 x.py\n',
    );
    expect(lastMeaningfulLine(l, [])).toBe('step 10 loss 0.3');
  });
  it('is null for an empty tail', () => {
    expect(lastMeaningfulLine(lines(''), [])).toBeNull();
  });
});

describe('finalReportStart and analyzeStderr', () => {
  it('starts the final report at its Traceback line', () => {
    const text = `epoch 1 done\n${TB.valueError}`;
    const l = lines(text);
    expect(finalReportStart(l, pythonExceptions(l))).toBe(1);
  });
  it('includes chained causes in the final report', () => {
    const text =
      'log line\n' +
      TB.torchOom1 +
      '\nDuring handling of the above exception, another exception occurred:\n\n' +
      TB.valueError;
    const l = lines(text);
    expect(finalReportStart(l, pythonExceptions(l))).toBe(1);
    expect(analyzeStderr(text, false).gpuOom).not.toBeNull();
  });
  it('ignores a recovered error logged before the final traceback', () => {
    const f = analyzeStderr(`${TB.torchOom2}retrying with a smaller batch\n${TB.valueError}`, false);
    expect(f.gpuOom).toBeNull();
    expect(f.lastLine).toBe('ValueError: expected 10 columns, got 9');
  });
  it('searches the whole tail when it does not end in a Python exception', () => {
    expect(analyzeStderr(TB.badAlloc, false).hostMemory).not.toBeNull();
  });
  it('searches the whole tail when the final exception only wraps a child failure', () => {
    const text = `${TB.torchOom2}torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n`;
    expect(analyzeStderr(text, false).gpuOom).not.toBeNull();
  });
});
