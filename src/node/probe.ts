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
    status: parseJson<StatusFile>(sections.status),
    monitor: parseJson<MonitorFile>(sections.monitor),
    supervisorAlive: (sections.alive ?? '').trim() === 'yes',
    bootId: (sections.boot ?? '').trim() || null,
    recentSamples: (sections.samples ?? '')
      .split('\n')
      .map((l) => parseJson<Sample>(l))
      .filter((s): s is Sample => s !== null),
    // the probe adds one newline before its end marker
    stderrTail: stderr.endsWith('\n') ? stderr.slice(0, -1) : stderr,
  };
}

function parseJson<T>(text: string | undefined): T | null {
  if (!text || text.trim() === '') return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}
