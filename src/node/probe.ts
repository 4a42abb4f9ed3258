/**
 * Parses a probe's sectioned output (see probeCommand) into a JobProbe. Pure.
 */
import type { JobProbe, MonitorFile, Sample, StatusFile } from '../core/types.js';
import { sectionMarker } from './commands.js';

/** Turns the text printed by probeCommand into plain data; tolerant of missing or torn files. */
export function parseProbe(text: string, nonce: string): JobProbe & { missing: boolean } {
  const names = ['missing', 'status', 'monitor', 'alive', 'boot', 'samples', 'stderr', 'end'];
  const sections: Record<string, string> = {};
  let current: string | null = null;
  let buf: string[] = [];
  const markers = new Map(names.map((n) => [sectionMarker(nonce, n), n]));
  for (const line of text.split('\n')) {
    const name = markers.get(line);
    if (name !== undefined) {
      if (current) sections[current] = buf.join('\n');
      current = name;
      buf = [];
    } else if (current) {
      buf.push(line);
    }
  }
  if (current) sections[current] = buf.join('\n');
  const missing = 'missing' in sections;
  const stderr = sections.stderr ?? '';
  return {
    missing,
    status: checked<StatusFile>(parseJson(sections.status), STATUS_SHAPE),
    monitor: checked<MonitorFile>(parseJson(sections.monitor), MONITOR_SHAPE),
    supervisorAlive: (sections.alive ?? '').trim() === 'yes',
    bootId: (sections.boot ?? '').trim() || null,
    recentSamples: (sections.samples ?? '')
      .split('\n')
      .map((l) => checked<Sample>(parseJson(l), SAMPLE_SHAPE))
      .filter((s): s is Sample => s !== null),
    // the probe adds one newline before its end marker
    stderrTail: stderr.endsWith('\n') ? stderr.slice(0, -1) : stderr,
  };
}

function parseJson(text: string | undefined): unknown {
  if (!text || text.trim() === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/**
 * The files a probe reads live in a folder the job itself can write to, so their fields are
 * checked before anything trusts them: a file of the wrong shape counts as absent.
 */
type Kind = 'number' | 'number?' | 'boolean' | 'string' | 'string?' | 'strings' | 'array?' | 'any';
const STATUS_SHAPE: Record<string, Kind> = {
  state: 'string',
  supervisorPid: 'number',
  pid: 'number?',
  pgid: 'number?',
  startedAtMs: 'number',
  endedAtMs: 'number?',
  exitCode: 'number?',
  signal: 'number?',
  timedOut: 'boolean',
  cancelled: 'boolean',
  limitFired: 'string?',
  killedAfterGrace: 'boolean',
  cpuSeconds: 'number?',
  cgroup: 'string?',
  oomKills: 'number?',
  pidsRefused: 'number?',
  kernelOom: 'strings',
  leftovers: 'number',
};
const MONITOR_SHAPE: Record<string, Kind> = {
  samples: 'number',
  peakRssBytes: 'number',
  peakProcs: 'number',
  peakThreads: 'number',
  peakOpenFiles: 'number',
  peakFolderBytes: 'number',
  peakGpuMemBytes: 'number?',
  memoryWatchFired: 'boolean',
};
const SAMPLE_SHAPE: Record<string, Kind> = {
  t: 'number',
  rssBytes: 'number',
  cpuPct: 'number',
  procs: 'number',
  threads: 'number',
  openFiles: 'number',
  folderBytes: 'number',
  gpu: 'array?',
};

function fits(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'number?':
      return v === null || v === undefined || (typeof v === 'number' && Number.isFinite(v));
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'string?':
      return v === null || v === undefined || typeof v === 'string';
    case 'strings':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'array?':
      return v === null || v === undefined || Array.isArray(v);
    case 'any':
      return true;
  }
}

/** `value` when it is an object whose fields have the kinds `shape` names, else null. */
export function checked<T>(value: unknown, shape: Record<string, Kind>): T | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const o = value as Record<string, unknown>;
  return Object.entries(shape).every(([k, kind]) => fits(o[k], kind)) ? (value as T) : null;
}
