/**
 * What `gpuq nodes` says of Docker on a node, from the lines the node's docker probe printed
 * (node/commands.ts dockerProbeCommand). Pure. Docker is usable when the login account reaches
 * the daemon; it is refused where a combination would silently drop limits (rootless on cgroup
 * v1: no memory or pids limits, only a warning).
 */
import { printableLine } from './format.js';

/** The `docker` field of a node report (`gpuq nodes --json`). */
export interface DockerReport {
  /** Whether `--isolation docker` can run there. */
  usable: boolean;
  /** The daemon's version ("20.10.24+dfsg1"), when it answered. */
  version: string | null;
  /** "1" or "2", as `docker info` says. */
  cgroupVersion: string | null;
  /** "cgroupfs" or "systemd". */
  cgroupDriver: string | null;
  rootless: boolean | null;
  /** Why it is not usable (one sentence), or null. */
  reason: string | null;
  /** Containers of jobs whose supervisor had died, removed by this look. */
  removed: string[];
}

/**
 * Parses the probe's output: `absent`, or `rc N` then `docker info`'s one line (version, cgroup
 * version, driver, security options as JSON, tab-separated) or its error, then `removed NAME` lines.
 */
export function parseDockerProbe(text: string, command: string): DockerReport | null {
  const lines = text.split('\n');
  const report: DockerReport = {
    usable: false,
    version: null,
    cgroupVersion: null,
    cgroupDriver: null,
    rootless: null,
    reason: null,
    removed: lines.filter((l) => /^removed gpuq-[a-z0-9-]{1,80}$/.test(l)).map((l) => l.slice(8)),
  };
  if (lines[0] === 'absent') return null;
  const rc = /^rc (\d+)$/.exec(lines[0] ?? '');
  if (!rc) return { ...report, reason: 'the docker probe printed nothing readable' };
  const info = printableLine(lines[1] ?? '').slice(0, 400);
  if (rc[1] !== '0') {
    const why = /permission denied/i.test(info)
      ? `the login account may not use the Docker socket (add it to the docker group)`
      : /Cannot connect|Is the docker daemon running|connection refused|no such file/i.test(info)
        ? 'the Docker daemon does not answer'
        : `\`${command} info\` failed`;
    return { ...report, reason: `${why}: ${info}` };
  }
  const [version, cgroupVersion, cgroupDriver, security] = (lines[1] ?? '').split('\t');
  report.version = version ? printableLine(version).slice(0, 64) : null;
  report.cgroupVersion = cgroupVersion && /^[0-9]$/.test(cgroupVersion) ? cgroupVersion : null;
  report.cgroupDriver = cgroupDriver ? printableLine(cgroupDriver).slice(0, 32) : null;
  report.rootless = /name=rootless/.test(security ?? '');
  if (report.rootless && report.cgroupVersion === '1')
    return {
      ...report,
      reason: 'rootless Docker on cgroup v1 ignores the memory and pids limits; use rootful Docker or cgroup v2',
    };
  return { ...report, usable: true };
}

/** One line for `gpuq nodes`: "docker 20.10.24, cgroup v2 (systemd), rootful". */
export function dockerLine(d: DockerReport): string {
  const facts = [
    d.version ? `docker ${d.version}` : 'docker',
    d.cgroupVersion ? `cgroup v${d.cgroupVersion}${d.cgroupDriver ? ` (${d.cgroupDriver})` : ''}` : null,
    d.rootless === null ? null : d.rootless ? 'rootless' : 'rootful',
  ].filter(Boolean);
  const removed = d.removed.length ? `; removed ${d.removed.length} container(s) of dead jobs` : '';
  return d.usable ? `${facts.join(', ')}${removed}` : `${facts.join(', ')}: not usable: ${d.reason}${removed}`;
}
