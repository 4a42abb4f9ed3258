/**
 * A stand-in `nvidia-smi` for machines without a GPU: put its folder first on the PATH of a
 * gpuq home and the node-side sampler reads one GPU from it, with the pid written to `pidFile`
 * (by the test's job) as a compute app on that GPU.
 */
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeGpu {
  /** The folder holding the script (prepend it to PATH). */
  bin: string;
  /** Where the job writes its pid to appear as a compute app. */
  pidFile: string;
}

/** Writes the stand-in: GPU 0 with `memMiB` used at `utilPct`, the job holding `jobMemMiB`. */
export async function fakeNvidiaSmi(opts: { memMiB: number; utilPct: number; jobMemMiB: number }): Promise<FakeGpu> {
  const bin = await mkdtemp(join(tmpdir(), 'gpuq-smi-'));
  const pidFile = join(bin, 'job.pid');
  const uuid = 'GPU-11111111-2222-3333-4444-555555555555';
  const script = [
    '#!/bin/sh',
    'case "$1" in',
    `  --query-gpu=*) echo "0, ${uuid}, ${opts.memMiB}, ${opts.utilPct}" ;;`,
    `  --query-compute-apps=*) [ -s ${pidFile} ] && echo "$(cat ${pidFile}), ${opts.jobMemMiB}, ${uuid}" ;;`,
    'esac',
    'exit 0',
    '',
  ].join('\n');
  await writeFile(join(bin, 'nvidia-smi'), script);
  await chmod(join(bin, 'nvidia-smi'), 0o755);
  // The job may run as a uid of its own (the "uid" trust boundary): let it reach and write pidFile.
  await chmod(bin, 0o755);
  await writeFile(pidFile, '');
  await chmod(pidFile, 0o666);
  return { bin, pidFile };
}

/**
 * Writes a stand-in `nvidia-smi` listing `count` idle GPUs (indices 0…count-1), answering each
 * `--query-gpu=` field it knows (index, uuid, name, utilization.gpu, memory.used, memory.total)
 * and no compute apps; `behave: 'fail'` exits 9 as a broken driver does, `'hang'` never answers.
 * Each call appends its arguments as a line to `calls` in the folder. Returns the folder to put
 * first on PATH.
 */
export async function fakeNvidiaSmiGpus(count: number, behave: 'ok' | 'fail' | 'hang' = 'ok'): Promise<string> {
  const bin = await mkdtemp(join(tmpdir(), 'gpuq-smi-'));
  const script = [
    '#!/bin/sh',
    'echo "$*" >>"${0%/*}/calls"',
    behave === 'fail'
      ? 'echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver."; exit 9'
      : '',
    behave === 'hang' ? 'exec sleep 600' : '',
    'q=',
    'for a in "$@"; do case "$a" in --query-gpu=*) q=${a#--query-gpu=} ;; --query-compute-apps=*) exit 0 ;; esac; done',
    '[ -n "$q" ] || exit 0',
    'i=0',
    `while [ "$i" -lt ${count} ]; do`,
    '  line=; IFS=,',
    '  for f in $q; do',
    '    case "$f" in',
    '      index) v=$i ;; uuid) v=GPU-0000000$i-2222-3333-4444-555555555555 ;; name) v="Stand-in GPU" ;;',
    '      utilization.gpu) v=3 ;; memory.used) v=1 ;; memory.total) v=81559 ;; *) v="[N/A]" ;;',
    '    esac',
    '    line="${line:+$line, }$v"',
    '  done',
    '  unset IFS; echo "$line"; i=$((i + 1))',
    'done',
    'exit 0',
    '',
  ].join('\n');
  await writeFile(join(bin, 'nvidia-smi'), script);
  await chmod(join(bin, 'nvidia-smi'), 0o755);
  await chmod(bin, 0o755);
  return bin;
}
