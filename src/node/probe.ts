/**
 * Parses a probe's sectioned output (see probeCommand) into a JobProbe. Pure. The files it reads
 * live in a folder the job itself can write to, so they are checked against their shapes
 * (core/job-files) before anything trusts them: a file of the wrong shape counts as absent.
 */
import { type GradingFiles, parseGradingStatus } from '../core/grading.js';
import { parseMonitorFile, parseQueueFile, parseSampleLines, parseStatusFile } from '../core/job-files.js';
import type { JobProbe } from '../core/types.js';
import { sectionMarker } from './commands.js';

/** Turns the text printed by probeCommand into plain data; tolerant of missing or torn files. */
export function parseProbe(text: string, nonce: string): JobProbe & { missing: boolean } {
  const names = [
    'missing',
    'status',
    'monitor',
    'alive',
    'boot',
    'samples',
    'stderr',
    'end',
    'queue',
    ...GRADING_SECTIONS,
  ];
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
    status: parseStatusFile(sections.status),
    monitor: parseMonitorFile(sections.monitor),
    supervisorAlive: (sections.alive ?? '').trim() === 'yes',
    bootId: (sections.boot ?? '').trim() || null,
    recentSamples: parseSampleLines(sections.samples),
    // the probe adds one newline before its end marker
    stderrTail: stderr.endsWith('\n') ? stderr.slice(0, -1) : stderr,
    queue: parseQueueFile(sections.queue),
    grading: parseGradingSections(sections),
  };
}

const GRADING_SECTIONS = ['gnum', 'gstatus', 'gresultsize', 'gresults', 'gmessage', 'gmessagetext', 'gstderr'];

/** The newest grading's files from the probe's sections (null: no grading folder). */
function parseGradingSections(sections: Record<string, string>): GradingFiles | null {
  const num = (sections.gnum ?? '').trim();
  if (!/^[0-9]{1,8}$/.test(num)) return null;
  const size = (sections.gresultsize ?? '').trim();
  const resultsBytes = /^[0-9]{1,15}$/.test(size) ? Number(size) : null;
  return {
    number: Number(num),
    status: parseGradingStatus(sections.gstatus),
    resultsBytes,
    results: resultsBytes === null ? null : (sections.gresults ?? ''),
    message: (sections.gmessage ?? '').trim() === 'yes' ? (sections.gmessagetext ?? '') : null,
    stderrTail: sections.gstderr ?? '',
  };
}
