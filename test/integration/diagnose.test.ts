/**
 * `gpuq diagnose` and the peaks of `gpuq show`, end to end on the embedded local node: real
 * programs under the real supervisor, the real binary reading back what it recorded.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gpuq, gpuqJson, makeHome, writeProgram, type Home } from '../helpers/cli.js';

interface Peak {
  key: string;
  value: number;
  limit: number | null;
  ratio: number | null;
  text: string;
}

interface DiagnosisJson {
  id: string;
  state: string;
  verdict: {
    class: string;
    cause: string | null;
    exitCode: number | null;
    summary: string;
    evidence: string[];
    hints: string[];
  } | null;
  summary: string;
  evidence: string[];
  peaks: Peak[];
  stderrTail: string[];
  folder: { dir: string; exists: boolean } | null;
  nodeFacts: {
    reachable: boolean;
    error: string | null;
    status: {
      disk: { freeBytes: number; totalBytes: number } | null;
      inodes: { free: number } | null;
      load: number[] | null;
    } | null;
  };
  hints: string[];
  notes: string[];
}

const homes: Home[] = [];
async function home(): Promise<Home> {
  const h = await makeHome();
  homes.push(h);
  return h;
}
afterEach(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});

const MiB = 1024 * 1024;

describe('gpuq diagnose', () => {
  it('names the missing module, quotes stderr and reads the node', async () => {
    const h = await home();
    const prog = await writeProgram(
      'solution.py',
      'import sys\nprint("loading", file=sys.stderr)\nimport gpuq_no_such_module_xyz\n',
    );
    const sub = await gpuq(h, ['submit', prog, '--wait', '-q']);
    expect(sub.code, sub.stderr).toBe(10);
    const id = sub.stdout.trim().split('\n')[0] as string;

    const human = await gpuq(h, ['diagnose', id]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/failed \(missing_module\), exit 1/);
    expect(human.stdout).toMatch(/Could not import gpuq_no_such_module_xyz on node local\./);
    expect(human.stdout).toMatch(/pip install gpuq_no_such_module_xyz/);
    expect(human.stdout).toMatch(/Last \d+ lines? of stderr/);
    expect(human.stdout).toMatch(/\| ModuleNotFoundError: No module named 'gpuq_no_such_module_xyz'/);
    expect(human.stdout).toMatch(/Node local\n\s+disk\s+.* free of /);

    const d = await gpuqJson<DiagnosisJson>(h, ['diagnose', id.slice(0, 5)]);
    expect(d.id).toBe(id);
    expect(d.verdict).toMatchObject({ class: 'failed', cause: 'missing_module', exitCode: 1 });
    expect(d.summary).toBe(d.verdict?.summary);
    expect(d.hints.some((x) => x.includes('gpuq_no_such_module_xyz'))).toBe(true);
    expect(d.stderrTail.at(-1)).toBe("ModuleNotFoundError: No module named 'gpuq_no_such_module_xyz'");
    expect(d.stderrTail).toContain('loading');
    expect(d.folder).toMatchObject({ exists: true });
    expect(d.nodeFacts.reachable).toBe(true);
    expect(d.nodeFacts.status?.disk?.freeBytes).toBeGreaterThan(0);
    expect(d.nodeFacts.status?.inodes?.free).toBeGreaterThan(0);
    expect(d.peaks.find((p) => p.key === 'wall_time')?.text).toMatch(/^ran \S+ of the 1h wall-clock limit/);

    // The node gone: what the ledger knows is still printed, and the exit code says it is partial.
    await writeFile(
      join(h.dir, 'config.json'),
      JSON.stringify({ nodes: { local: { transport: 'ssh', host: '127.0.0.1', port: 1, connectTimeout: '10s' } } }),
    );
    const off = await gpuq(h, ['diagnose', id]);
    expect(off.code, off.stderr).toBe(3);
    expect(off.stdout).toMatch(/Could not import gpuq_no_such_module_xyz on node local\./);
    expect(off.stdout).toMatch(/pip install gpuq_no_such_module_xyz/);
    expect(off.stdout).not.toMatch(/Last \d+ lines? of stderr/);
    expect(off.stderr).toMatch(/node local could not be reached/);
    const offJson = JSON.parse((await gpuq(h, ['diagnose', id, '--json'])).stdout) as DiagnosisJson;
    expect(offJson.nodeFacts).toMatchObject({ reachable: false, status: null });
    expect(offJson.notes.join('\n')).toMatch(/could not be reached/);
    const show = await gpuq(h, ['show', id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/Verdict\s+failed \(missing_module\)/);
    // The peaks were recorded with the verdict: show prints them from the ledger, node or not.
    expect(show.stdout).toMatch(/Peaks\n\s+memory peaked at /);
    expect(show.stdout).toMatch(/\n\s+ran \S+ of the 1h wall-clock limit/);
    expect(show.stderr).toBe('');
  });

  it('sets a memory hog’s RSS peak against its --memory limit', async () => {
    const h = await home();
    // Grows by 10 MiB every 20 ms, so the sampler sees it climb before the limit stops it.
    const prog = await writeProgram(
      'hog.py',
      'import time\nx = []\nwhile True:\n    x.append(bytearray(10 * 1024 * 1024))\n    time.sleep(0.02)\n',
    );
    const sub = await gpuq(h, ['submit', prog, '--memory', '200m', '--wait', '-q']);
    expect(sub.code, sub.stderr).toBe(12);
    const id = sub.stdout.trim().split('\n')[0] as string;

    const d = await gpuqJson<DiagnosisJson>(h, ['diagnose', id]);
    expect(d.verdict?.class).toBe('oom');
    // One memory peak: the memory cgroup's high-water mark where there is one, else the sampler's.
    const memory = d.peaks.filter((p) => p.key === 'memory');
    expect(memory, JSON.stringify(d.peaks)).toHaveLength(1);
    const rss = memory[0];
    expect(rss?.limit).toBe(200 * MiB);
    expect(rss?.value).toBeGreaterThan(100 * MiB);
    expect(rss?.text).toMatch(/^memory peaked at [\d.]+ MiB of the 200 MiB limit \(\d+%\)/);
    expect(d.hints.some((x) => /--memory 400m/.test(x))).toBe(true);

    const human = await gpuq(h, ['diagnose', id]);
    expect(human.stdout).toMatch(/oom \(\w+\)/);
    expect(human.stdout).toMatch(/Peaks against limits\n\s+- memory peaked at [\d.]+ MiB of the 200 MiB limit/);

    const show = await gpuq(h, ['show', id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/Peaks\n\s+memory peaked at [\d.]+ MiB of the 200 MiB limit/);
    const shown = await gpuqJson<{ peaks: Peak[] | null }>(h, ['show', id]);
    expect(shown.peaks?.find((p) => p.key === 'memory')).toEqual(rss);
  });

  it('says a running job is still running and shows its peaks so far', async () => {
    const h = await home();
    const prog = await writeProgram(
      'slow.py',
      'import sys, time\nbuf = bytearray(40 * 1024 * 1024)\nprint("working", file=sys.stderr)\ntime.sleep(60)\n',
    );
    const sub = await gpuq(h, ['submit', prog, '-q']);
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.trim();
    try {
      let d = await gpuqJson<DiagnosisJson>(h, ['diagnose', id]);
      for (let i = 0; i < 40 && !d.stderrTail.includes('working'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        d = await gpuqJson<DiagnosisJson>(h, ['diagnose', id]);
      }
      expect(d.state).toBe('running');
      expect(d.verdict).toBeNull();
      expect(d.summary).toMatch(new RegExp(`^Job ${id} is still running for \\S+ on node local`));
      expect(d.stderrTail).toContain('working');
      expect(d.peaks.find((p) => p.key === 'wall_time')?.text).toMatch(/^has run /);
      expect(d.hints.join('\n')).toMatch(new RegExp(`gpuq cancel ${id}`));
      const human = await gpuq(h, ['diagnose', id]);
      expect(human.stdout).toMatch(/on local: running/);
    } finally {
      await gpuq(h, ['cancel', id]);
    }
  });

  it('exits 4 for an unknown job', async () => {
    const h = await home();
    const r = await gpuq(h, ['diagnose', 'zzzzzzzz']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/no job matches "zzzzzzzz"/);
  });
});
