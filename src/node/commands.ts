/**
 * The bash scripts gpuq runs on a node, built as data. Each takes the job folder and other
 * values and quotes them; src/node/protocol.ts is the one module that executes them.
 */
import { sh, shPath } from '../core/quote.js';
import type { RemoteCommand } from '../transport/transport.js';

/** Marker around sections of a probe's output; `nonce` makes it unguessable for the job. */
export function sectionMarker(nonce: string, name: string): string {
  return `@@gpuq-${nonce}@@ ${name}`;
}

/** The shell lines that make the job folder (0700) and check the node's tools; `$d` is the folder. */
function prepareLines(dir: string): string {
  return (
    `set -e; umask 077; d=${shPath(dir)}; mkdir -p -- "$d/work"; chmod 700 -- "$d"; cd -- "$d"; ` +
    `command -v flock >/dev/null && command -v setsid >/dev/null || ` +
    `{ echo "gpuq needs flock and setsid (util-linux) on this node" >&2; exit 3; }; ` +
    `command -v python3 >/dev/null || ` +
    `echo "python3 is missing on this node: no resource samples and no memory watch" >&2; `
  );
}

/** A file written into the job folder by setupJobCommand. */
export interface InlineFile {
  /** Path inside the job folder, e.g. "run.sh" or "work/solution.py". */
  name: string;
  content: string | Buffer;
  mode: 0o600 | 0o700;
}

/**
 * One round trip that makes the job folder (0700), prints its absolute path on the first line,
 * writes `files` into it (exact bytes, through base64 here-documents) and, with `launch`, starts
 * the supervisor as launchCommand does (status.json follows the path). The script travels on
 * stdin (`eval "$(cat)"`), so its size is not bounded by the node's argument limit.
 */
export function setupJobCommand(dir: string, files: readonly InlineFile[], launch: boolean): RemoteCommand {
  const parts = [`${prepareLines(dir)}pwd -P`];
  for (const f of files) {
    const b64 = Buffer.from(f.content)
      .toString('base64')
      .replace(/.{1,76}/g, '$&\n');
    // The delimiter has "_", which base64 never does: no content line can end the document.
    parts.push(`base64 -d > ${sh(f.name)} <<'GPUQ_EOF'\n${b64}GPUQ_EOF`);
    // umask 077 already makes a new file 0600.
    if (f.mode !== 0o600) parts.push(`chmod ${f.mode.toString(8)} -- ${sh(f.name)}`);
  }
  if (launch) parts.push('set +e', ...launchLines());
  const script = `${parts.join('\n')}\n`;
  return { purpose: launch ? 'start the supervisor' : 'create the job folder', script: 'eval "$(cat)"', stdin: script };
}

/**
 * Starts the supervisor detached in its own session, holding job.lock (fd 9) for as long as it
 * lives, then waits (at most ~5 s) until it has started the job and prints status.json.
 */
export function launchCommand(dir: string): RemoteCommand {
  return {
    purpose: 'start the supervisor',
    script: [`cd -- ${shPath(dir)} || exit 3`, ...launchLines()].join('\n'),
  };
}

/** launchCommand's body, run in the job folder. */
function launchLines(): string[] {
  return [
    `exec 9>>job.lock`,
    `flock -xn 9 || { echo "the job is already running" >&2; exit 3; }`,
    `setsid bash ./run.sh </dev/null >>supervisor.log 2>&1 &`,
    `exec 9>&-`,
    // Builtins only in the loop (read, case): one fork per turn, for sleep.
    // boundary.refused: the supervisor would not start the program without a trust boundary.
    `i=0; while [ "$i" -lt 250 ]; do st=; IFS= read -r st 2>/dev/null <status.json; ` +
      `case $st in *'"state":"running"'*|*'"state":"exited"'*) break;; esac; ` +
      `[ -e boundary.refused ] && break; sleep 0.02; i=$((i+1)); done`,
    `cat status.json 2>/dev/null || ` +
      `{ echo "the supervisor did not start; see supervisor.log:" >&2; tail -n 20 supervisor.log >&2; exit 3; }`,
  ];
}

/**
 * After a link dropped during a launch: prints the folder's absolute path and status.json when
 * the supervisor was started (job.lock held, or a status written), else `none`. Safe to run
 * whatever happened: it starts nothing.
 */
export function adoptCommand(dir: string): RemoteCommand {
  return {
    purpose: 'check whether the job started',
    script: [
      `cd -- ${shPath(dir)} 2>/dev/null || { echo none; exit 0; }`,
      `if [ -e status.json ] || ! flock -ns job.lock true 2>/dev/null; then`,
      `  for i in $(seq 1 250); do ` +
        `grep -q '"state":"\\(running\\|exited\\)"' status.json 2>/dev/null && break; sleep 0.02; done`,
      `  pwd -P; cat status.json 2>/dev/null || echo '{}'`,
      `else echo none; fi`,
    ].join('\n'),
  };
}

/**
 * Reads everything the client needs to know about a job in one round trip: status.json,
 * monitor.json, the end of stderr.log and samples.jsonl, whether the supervisor still holds
 * job.lock, and the node's boot id.
 */
export function probeCommand(dir: string, nonce: string, stderrBytes = 65536): RemoteCommand {
  const m = (n: string) => sh(sectionMarker(nonce, n));
  return {
    purpose: 'read the job status',
    script: [
      `cd -- ${shPath(dir)} 2>/dev/null || { echo ${m('missing')}; exit 0; }`,
      `echo ${m('status')}; cat status.json 2>/dev/null`,
      `echo ${m('monitor')}; cat monitor.json 2>/dev/null`,
      `echo ${m('alive')}; if flock -ns job.lock true 2>/dev/null; then echo no; else echo yes; fi`,
      `echo ${m('boot')}; cat /proc/sys/kernel/random/boot_id 2>/dev/null`,
      `echo ${m('samples')}; tail -n 5 samples.jsonl 2>/dev/null`,
      `echo ${m('stderr')}; tail -c ${Number(stderrBytes)} stderr.log 2>/dev/null`,
      `echo; echo ${m('end')}`,
    ].join('\n'),
  };
}

/** Blocks until the supervisor has let go of job.lock (finished or died), then probes. */
export function waitEndCommand(dir: string, nonce: string): RemoteCommand {
  const probe = probeCommand(dir, nonce);
  return {
    purpose: 'wait for the job to end',
    script: `cd -- ${shPath(dir)} 2>/dev/null && flock -s job.lock true 2>/dev/null\n${probe.script}`,
  };
}

/** Asks the supervisor to cancel: a file (in case it is starting) and SIGUSR1. */
export function cancelCommand(dir: string): RemoteCommand {
  return {
    purpose: 'cancel the job',
    script: [
      `cd -- ${shPath(dir)} || exit 0`,
      `: > cancel.requested`,
      `if flock -ns job.lock true 2>/dev/null; then echo gone; exit 0; fi`,
      `pid=$(sed -n 's/.*"supervisorPid":\\([0-9]*\\).*/\\1/p' status.json)`,
      `[ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null && echo signalled || echo gone`,
    ].join('\n'),
  };
}

/**
 * Streams a log file from a byte offset until the supervisor is gone (tail --pid), so a
 * reconnecting follower resumes exactly where it stopped.
 */
export function followCommand(
  dir: string,
  file: 'stdout.log' | 'stderr.log' | 'samples.jsonl',
  fromByte: number,
): RemoteCommand {
  return {
    purpose: `follow ${file}`,
    script: [
      `cd -- ${shPath(dir)} || exit 3`,
      `pid=$(sed -n 's/.*"supervisorPid":\\([0-9]*\\).*/\\1/p' status.json 2>/dev/null)`,
      `if flock -ns job.lock true 2>/dev/null; then exec tail -c +${Number(fromByte) + 1} -- ${sh(file)}; fi`,
      `exec tail -c +${Number(fromByte) + 1} -s 0.2 -F --pid="$pid" -- ${sh(file)} 2>/dev/null`,
    ].join('\n'),
  };
}

/** Prints a whole log, or its last `lines` lines. */
export function readLogCommand(dir: string, file: 'stdout.log' | 'stderr.log', lines: number | null): RemoteCommand {
  const f = sh(file);
  return {
    purpose: `read ${file}`,
    script: `cd -- ${shPath(dir)} || exit 3; ${lines === null ? `cat -- ${f}` : `tail -n ${Number(lines)} -- ${f}`}`,
  };
}

/**
 * Prints a log's byte size on the first line, then its content up to that size (the last
 * `lines` lines of it, or all): a follower resumes from exactly that byte.
 */
export function snapshotLogCommand(
  dir: string,
  file: 'stdout.log' | 'stderr.log',
  lines: number | null,
): RemoteCommand {
  const f = sh(file);
  return {
    purpose: `read ${file}`,
    script:
      `cd -- ${shPath(dir)} || exit 3; s=$(stat -c %s -- ${f} 2>/dev/null || echo 0); echo "$s"; ` +
      `[ "$s" -gt 0 ] || exit 0; head -c "$s" -- ${f}` +
      (lines === null ? '' : ` | tail -n ${Number(lines)}`),
  };
}

/** Prints the byte size of a file in the job folder (0 if missing). */
export function sizeCommand(dir: string, file: 'stdout.log' | 'stderr.log' | 'samples.jsonl'): RemoteCommand {
  return {
    purpose: `measure ${file}`,
    script: `cd -- ${shPath(dir)} || exit 3; stat -c %s -- ${sh(file)} 2>/dev/null || echo 0`,
  };
}

/**
 * What `gpuq nodes` and node choice need to know of a node, as `key value` lines: load, CPUs,
 * memory, boot id, running gpuq jobs under `workdir`, and with `full` also disk and inodes of
 * workdir (or its nearest existing parent) and the GPUs (nvidia-smi) with who holds them.
 * Every external tool is bounded by `timeout`, so a hung mount or driver cannot hang it.
 */
export function nodeStatusCommand(workdir: string, full: boolean): RemoteCommand {
  const lines = [
    `w=${shPath(workdir.replace(/\/+$/, '') || '/')}`,
    `echo "host $(hostname 2>/dev/null)"`,
    `echo "load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"`,
    `echo "cpus $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"`,
    `echo "boot $(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"`,
    // A job runs while its supervisor holds job.lock; only folders whose status says running are checked.
    `n=0; if [ -d "$w/jobs" ]; then n=$(grep -l '"state":"running"' "$w"/jobs/*/status.json 2>/dev/null | ` +
      `while IFS= read -r s; do flock -ns "\${s%/status.json}/job.lock" true 2>/dev/null || echo x; done | wc -l); ` +
      `fi; echo "jobs $n"`,
  ];
  if (full) {
    lines.push(
      `awk '/^MemTotal:/{printf "memtotal %.0f\\n", $2*1024} ` +
        `/^MemAvailable:/{printf "memavail %.0f\\n", $2*1024}' /proc/meminfo 2>/dev/null`,
      `d=$w; while [ ! -e "$d" ] && [ "$d" != / ] && [ "$d" != . ]; do d=$(dirname -- "$d"); done; echo "diskpath $d"`,
      `timeout 5 df -P -B1 -- "$d" 2>/dev/null | awk 'NR==2{print "disk",$2,$3,$4}'`,
      // The trust boundary a job can get here, as the supervisor's choose_boundary decides it.
      `if ! command -v setpriv >/dev/null 2>&1; then echo "boundary none"; ` +
        `elif [ "$(id -u)" = 0 ]; then echo "boundary uid"; ` +
        `elif command -v unshare >/dev/null 2>&1 && ` +
        `timeout 5 unshare --user --map-root-user --mount --pid --fork --mount-proc true </dev/null >/dev/null 2>&1; ` +
        `then echo "boundary userns"; ` +
        `else echo "boundary none"; fi`,
      `timeout 5 df -P -i -- "$d" 2>/dev/null | awk 'NR==2{print "inodes",$2,$3,$4}'`,
      `if command -v nvidia-smi >/dev/null 2>&1; then`,
      `  timeout 10 nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total ` +
        `--format=csv,noheader,nounits 2>/dev/null | sed 's/^/gpu /'`,
      `  timeout 10 nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory ` +
        `--format=csv,noheader,nounits 2>/dev/null | while IFS=', ' read -r u p m _; do`,
      `    [ -n "$p" ] || continue; ` +
        `j=$(tr '\\0' '\\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^GPUQ_JOB_ID=//p'); ` +
        `echo "app $u, $p, $m, $(ps -o user= -p "$p" 2>/dev/null | tr -d ' '), $j"`,
      `  done`,
      `else echo "nogpu"; fi`,
    );
  }
  lines.push('exit 0');
  return { purpose: 'read the node status', script: lines.join('\n') };
}
