/**
 * The bash scripts gpuq runs on a node, built as data. Each takes the job folder and other
 * values and quotes them; src/node/protocol.ts is the one module that executes them.
 */
import { sh, shPath, shWords } from '../core/quote.js';
import type { RemoteCommand } from '../transport/transport.js';

/** Marker around sections of a probe's output; `nonce` makes it unguessable for the job. */
export function sectionMarker(nonce: string, name: string): string {
  return `@@gpuq-${nonce}@@ ${name}`;
}

/**
 * The most gpuq reads of one job file in one go. status.json and monitor.json over their cap are
 * absent evidence (a real one is a few hundred bytes); stderr and samples are read from their end.
 */
export const READ_CAPS = { json: 64 * 1024, samples: 64 * 1024, stderr: 64 * 1024 } as const;

/**
 * Shell functions for reading files a job can write, defined at the top of each read command:
 * - `gpuq_rd FILE MAX [tail]`: prints FILE when it is a regular file (not a link, FIFO, socket or
 *   device), at most MAX bytes: its end with `tail`, else nothing when it is larger than MAX.
 *   `dd` opens it without following a link and without blocking (a FIFO swapped in after the
 *   check reads as empty), so no file can hang or flood the read. Without `tail` one `dd` of at
 *   most MAX+1 bytes does it (the size is the length read, in bytes: LC_ALL=C); with `tail`,
 *   `stat` first gives the offset of the end.
 * - `gpuq_reg FILE`: whether FILE is a regular file and not a link.
 * - `gpuq_held`: whether the supervisor holds job.lock (exit 0), is gone (1), or job.lock is not a
 *   regular file, so nobody can tell (2). The shell opens job.lock read-write, which never blocks
 *   (not even on a FIFO swapped in after the check), and `flock -n` tries that descriptor: one
 *   process, where `timeout flock FILE true` took three.
 * - `gpuq_spid`: the supervisor's pid from status.json, printed only when that process really is
 *   a supervisor of this folder (`bash ./run.sh …` with its working folder here): a job that writes
 *   another pid into status.json cannot have gpuq signal or wait on a process of its choosing.
 */
export const READ_FUNCTIONS = [
  `gpuq_reg() { [ -f "$1" ] && [ ! -L "$1" ]; }`,
  `gpuq_rd() { gpuq_reg "$1" || return 0; local s c k=0 LC_ALL=C; ` +
    `if [ "$3" != tail ]; then { c=$(dd if="$1" iflag=nofollow,nonblock,count_bytes count=$(($2+1)) bs=65536 status=none 2>/dev/null; echo x); } 2>/dev/null; ` +
    `c=\${c%x}; [ "\${#c}" -gt "$2" ] || printf '%s' "$c"; return 0; fi; ` +
    `s=$(stat -c %s -- "$1" 2>/dev/null) || return 0; [ "$s" -gt "$2" ] && k=$((s-$2)); ` +
    `dd if="$1" iflag=nofollow,nonblock,skip_bytes,count_bytes skip="$k" count="$2" bs=65536 status=none 2>/dev/null; return 0; }`,
  `gpuq_held() { gpuq_reg job.lock || return 2; if { flock -ns 3; } 3<>job.lock 2>/dev/null; then return 1; fi; return 0; }`,
  `gpuq_spid() { local p h; p=$(gpuq_rd status.json ${READ_CAPS.json} | sed -n 's/.*"supervisorPid":\\([0-9]\\{1,9\\}\\).*/\\1/p' | head -n 1); ` +
    `[ -n "$p" ] || return 0; h=$(pwd -P); [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$h" ] || return 0; ` +
    `case "$(tr '\\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in "bash ./run.sh "*|*"/bash ./run.sh "*) echo "$p";; esac; }`,
].join('\n');

/**
 * Reads the first line of status.json (the state: templates/README.md) into `$st` without ever
 * blocking: only a regular file that is no link, opened read-write (`<>`), which returns at once
 * even for a FIFO the job swapped in after the check, and read with a time limit. A plain
 * `read <status.json` of a planted FIFO waited for a writer that never came: submit hung.
 */
const READ_STATE_LINE =
  'st=; [ -f status.json ] && [ ! -L status.json ] && IFS= read -t 1 -r st 2>/dev/null <>status.json';

/**
 * `gpuq_nap`: waits 20 ms without a fork: a read with a time limit on a pipe that never gets
 * data (ours, opened read-write so it never ends); `sleep 0.02` where that cannot be set up. A
 * launch polls status.json 10-40 times, and each `sleep` process cost ~10 ms of CPU here.
 */
// The group's 2>/dev/null ends with it: on the `exec` itself it would silence the rest of the script's stderr.
const NAP =
  '{ exec {gpuq_z}<> <(:); } 2>/dev/null; ' +
  'gpuq_nap() { read -t 0.02 -u "${gpuq_z:-0}" _ 2>/dev/null </dev/null; [ $? -gt 128 ] || sleep 0.02; }';

/** Prints status.json (at most 64 KiB) without following a link or blocking on a FIFO; fails when unreadable. */
const PRINT_STATUS = 'dd if=status.json iflag=nofollow,nonblock bs=65536 count=1 status=none 2>/dev/null';

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
    NAP,
    // Builtins only in the loop (read, case, the nap): no fork per turn.
    // boundary.refused: the supervisor would not start the program without a trust boundary.
    `i=0; while [ "$i" -lt 250 ]; do ${READ_STATE_LINE}; ` +
      `case $st in *'"state":"running"'*|*'"state":"queued"'*|*'"state":"grading"'*|*'"state":"exited"'*) break;; esac; ` +
      `[ -e boundary.refused ] && break; [ -e lease.refused ] && break; [ -e docker.refused ] && break; gpuq_nap; i=$((i+1)); done`,
    // The GPU lock folder cannot be used (templates/README.md): exit 75, the supervisor's words on stderr.
    `[ -e lease.refused ] && { grep '^gpuq: ' supervisor.log | tail -n 2 >&2; exit 75; }`,
    // Docker cannot run the job there (templates/README.md, docker.refused): exit 76, the reason and a hint.
    `[ -e docker.refused ] && { grep '^gpuq: ' supervisor.log | tail -n 2 >&2; exit 76; }`,
    `${PRINT_STATUS} || ` +
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
      `  ${NAP}`,
      `  i=0; while [ "$i" -lt 250 ]; do ${READ_STATE_LINE}; ` +
        `case $st in *'"state":"running"'*|*'"state":"queued"'*|*'"state":"grading"'*|*'"state":"exited"'*) break;; esac; gpuq_nap; i=$((i+1)); done`,
      `  pwd -P; ${PRINT_STATUS} || echo '{}'`,
      `else echo none; fi`,
    ].join('\n'),
  };
}

/**
 * A job whose supervisor is gone without its final status (it died) may leave its container
 * running (--isolation docker): the probe that sees it gone removes it, with the docker command
 * and name the supervisor recorded (files the container cannot write). Silent, and a no-op
 * for every other job.
 */
const REAP_CONTAINER =
  `{ [ -f container ] && [ -f container.cmd ] && ! grep -q '"state":"exited"' status.json 2>/dev/null && ` +
  `IFS= read -r gpuq_c <container && [[ "$gpuq_c" =~ ^gpuq-[a-z0-9-]{1,80}$ ]] && ` +
  `mapfile -t -n 16 gpuq_d <container.cmd && [ "\${#gpuq_d[@]}" -gt 0 ] && ` +
  `timeout -s KILL 20 "\${gpuq_d[@]}" rm -f "$gpuq_c" "$gpuq_c-grade" >/dev/null 2>&1; } </dev/null`;

/**
 * Reads everything the client needs to know about a job in one round trip: status.json,
 * monitor.json, the end of stderr.log and samples.jsonl, whether the supervisor still holds
 * job.lock, and the node's boot id.
 */
export function probeCommand(dir: string, nonce: string, stderrBytes: number = READ_CAPS.stderr): RemoteCommand {
  const m = (n: string) => sh(sectionMarker(nonce, n));
  return {
    purpose: 'read the job status',
    script: [
      READ_FUNCTIONS,
      `cd -- ${shPath(dir)} 2>/dev/null || { echo ${m('missing')}; exit 0; }`,
      // The lock before status.json: a supervisor that ends between the two reads has written its
      // final status before letting go, so "gone" is never paired with the "running" it left behind.
      // A job.lock that is not a regular file tells nothing: the supervisor counts as alive.
      `echo ${m('alive')}; gpuq_held; if [ $? = 1 ]; then echo no; ${REAP_CONTAINER}; else echo yes; fi`,
      `echo ${m('status')}; gpuq_rd status.json ${READ_CAPS.json}`,
      `echo ${m('monitor')}; gpuq_rd monitor.json ${READ_CAPS.json}`,
      // queue.json may lack a final newline (or be torn): the echo keeps the next marker on its own line.
      `echo ${m('queue')}; gpuq_rd queue.json ${READ_CAPS.json}; echo`,
      `echo ${m('boot')}; head -c 100 /proc/sys/kernel/random/boot_id 2>/dev/null`,
      // The last lines of samples.jsonl within a bounded tail: a line longer than that is skipped.
      `echo ${m('samples')}; gpuq_rd samples.jsonl ${READ_CAPS.samples} tail | tail -n 5`,
      gradingLines(m),
      `echo ${m('stderr')}; gpuq_rd stderr.log ${Number(stderrBytes)} tail`,
      `echo; echo ${m('end')}`,
    ].join('\n'),
  };
}

/** What gradeJobCommand prints first when it cannot grade (issue 13, `gpuq grade`). */
export const GRADE_REFUSALS = { noFolder: 'gpuq-grade-nofolder', noSubmission: 'gpuq-grade-nosubmission' } as const;

/**
 * `gpuq grade`: grades a finished job again in its folder with the current templates/grade.py
 * (written over the folder's copy, with fingerprint.py) and grade.py's arguments, as the node
 * account, then probes the folder (probeCommand with `nonce`: its grading sections hold the new
 * grading). Prints a GRADE_REFUSALS line instead when the folder or the submission is gone.
 * The script travels on stdin, as setupJobCommand's does.
 */
export function gradeJobCommand(
  dir: string,
  submission: string,
  files: readonly InlineFile[],
  args: readonly string[],
  nonce: string,
): RemoteCommand {
  const parts = [
    `cd -- ${shPath(dir)} 2>/dev/null || { echo ${GRADE_REFUSALS.noFolder}; exit 0; }`,
    `s=${sh(`work/${submission}`)}; if [ ! -e "$s" ] && [ ! -L "$s" ]; then echo ${GRADE_REFUSALS.noSubmission}; exit 0; fi`,
    'umask 077',
  ];
  for (const f of files) {
    const b64 = Buffer.from(f.content)
      .toString('base64')
      .replace(/.{1,76}/g, '$&\n');
    parts.push(`rm -f -- ${sh(f.name)}; base64 -d > ${sh(f.name)} <<'GPUQ_EOF' || exit 3\n${b64}GPUQ_EOF`);
  }
  parts.push(
    'py=; for p in /usr/bin/python3 /usr/local/bin/python3; do [ -x "$p" ] && { py=$p; break; }; done',
    '[ -n "$py" ] || py=$(command -v python3) || { echo "gpuq: no python3 on this node to run the grader" >&2; exit 3; }',
    `"$py" -I -S ./grade.py ${shWords(args)} </dev/null >/dev/null 2>>grade.log || { echo "gpuq: grade.py failed (exit $?); see grade.log in the job's folder" >&2; exit 3; }`,
    probeCommand(dir, nonce).script,
  );
  return { purpose: 'grade the job', script: 'eval "$(cat)"', stdin: `${parts.join('\n')}\n` };
}

/** How much of the newest grading the probe reads (issue 13; core/grading judges it). */
export const GRADING_CAPS = { results: 256 * 1024, message: 16 * 1024, stderr: 4096 } as const;

/**
 * The probe's sections about the newest grading, `gradings/N/` with the highest N (issue 13):
 * its number, status.json, the size and text of feedback/results.jsonl (nothing over the cap),
 * the head of feedback/message.txt and the end of the grader's stderr.log. Nothing is read
 * through a link, and nothing at all when there is no grading.
 */
function gradingLines(m: (n: string) => string): string {
  const g = '"gradings/$gn"';
  const fb = '"gradings/$gn/feedback"';
  return [
    `echo ${m('gnum')}; gn=; if [ -d gradings ] && [ ! -L gradings ]; then ` +
      `gn=$(ls gradings 2>/dev/null | grep -x '[0-9]\\{1,8\\}' | sort -n | tail -n 1); ` +
      `{ [ -n "$gn" ] && [ -d ${g} ] && [ ! -L ${g} ]; } || gn=; fi; echo "$gn"`,
    `if [ -n "$gn" ]; then`,
    `echo ${m('gstatus')}; gpuq_rd ${g}/status.json ${READ_CAPS.json}; echo`,
    `fbok=; [ -d ${fb} ] && [ ! -L ${fb} ] && fbok=1`,
    `echo ${m('gresultsize')}; [ -n "$fbok" ] && gpuq_reg ${fb}/results.jsonl && stat -c %s -- ${fb}/results.jsonl 2>/dev/null`,
    `echo ${m('gresults')}; [ -n "$fbok" ] && gpuq_rd ${fb}/results.jsonl ${GRADING_CAPS.results}; echo`,
    `echo ${m('gmessage')}; [ -n "$fbok" ] && gpuq_reg ${fb}/message.txt && echo yes`,
    `echo ${m('gmessagetext')}; [ -n "$fbok" ] && gpuq_reg ${fb}/message.txt && ` +
      `dd if=${fb}/message.txt iflag=nofollow,nonblock,count_bytes count=${GRADING_CAPS.message} bs=65536 status=none 2>/dev/null; echo`,
    `echo ${m('gstderr')}; gpuq_rd ${g}/stderr.log ${GRADING_CAPS.stderr} tail; echo`,
    'fi',
  ].join('\n');
}

/**
 * Blocks until the supervisor has let go of job.lock (finished or died), for at most `maxWaitS`
 * seconds, then probes: the caller looks at the probe and waits again, so a supervisor that
 * never lets go (stopped, or a job.lock that is not a lock) cannot hold a client for ever.
 */
export function waitEndCommand(dir: string, nonce: string, maxWaitS = 60): RemoteCommand {
  const probe = probeCommand(dir, nonce);
  const wait = Math.max(1, Math.ceil(maxWaitS));
  return {
    purpose: 'wait for the job to end',
    script:
      `${READ_FUNCTIONS}\n` +
      `if cd -- ${shPath(dir)} 2>/dev/null; then if gpuq_reg job.lock; then { flock -w ${wait} -s 3; } 3<>job.lock 2>/dev/null; ` +
      `else sleep ${Math.min(wait, 5)}; fi; fi\n${probe.script}`,
  };
}

/**
 * Asks the supervisor to cancel: a file (in case it is starting) and SIGUSR1. The marker is made
 * with `touch` after removing whatever has its name: never through a link the job planted, and
 * never opening a FIFO (touch opens without blocking).
 */
export function cancelCommand(dir: string): RemoteCommand {
  return {
    purpose: 'cancel the job',
    script: [
      READ_FUNCTIONS,
      `cd -- ${shPath(dir)} || exit 0`,
      `gpuq_reg cancel.requested || rm -f -- cancel.requested 2>/dev/null; timeout -s KILL 5 touch -- cancel.requested 2>/dev/null`,
      `gpuq_held; [ $? = 1 ] && { echo gone; exit 0; }`,
      `pid=$(gpuq_spid)`,
      `[ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null && echo signalled || echo gone`,
    ].join('\n'),
  };
}

/**
 * Ends a job whose supervisor has stalled (stopped, or alive long past the job's deadline): with
 * the supervisor's pid checked as gpuq_spid does, SIGKILL to it, to every process below it and to
 * every process in the sessions of those (the job runs in its own session), and to every process
 * carrying the job's marker (`GPUQ_JOB_ID=ID` in its environment, as the supervisor's sweep finds
 * them). Prints `supervisor PID STATE` (its state letter before the kill; T: stopped) or
 * `supervisor none`, then `killed N`, then `released yes|no` (whether job.lock is free after).
 */
export function stopStalledCommand(dir: string, jobId: string): RemoteCommand {
  return {
    purpose: 'end a job whose supervisor stalled',
    script: [
      READ_FUNCTIONS,
      `cd -- ${shPath(dir)} 2>/dev/null || { echo 'supervisor none'; echo 'killed 0'; echo 'released yes'; exit 0; }`,
      `id=${sh(jobId)}; sp=$(gpuq_spid)`,
      `if [ -n "$sp" ]; then echo "supervisor $sp $(sed -n 's/^State:[[:space:]]*\\([A-Za-z]\\).*/\\1/p' "/proc/$sp/status" 2>/dev/null)"; else echo 'supervisor none'; fi`,
      `victims=$( { [ -n "$sp" ] && ps -e -o pid=,ppid=,sid= 2>/dev/null | awk -v r="$sp" '{p[NR]=$1; q[NR]=$2; s[NR]=$3} END { d[r]=1; c=1; while (c) { c=0; for (i=1; i<=NR; i++) if (!(p[i] in d) && (q[i] in d)) { d[p[i]]=1; c=1 } } for (i=1; i<=NR; i++) if (p[i] in d) ss[s[i]]=1; for (i=1; i<=NR; i++) if ((p[i] in d) || (s[i] in ss)) print p[i] }'; ` +
        `grep -lzx -- "GPUQ_JOB_ID=$id" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; } | sort -un | grep -vx -- "$$")`,
      `n=0; for p in $victims; do kill -KILL "$p" 2>/dev/null && n=$((n+1)); done; echo "killed $n"`,
      // A SIGKILLed process lets go of its locks once it is reaped: give that a moment (nothing
      // killed, nothing to wait for: the holder is untouched).
      `i=0; [ "$n" -gt 0 ] || i=50; while [ "$i" -lt 50 ]; do gpuq_held; [ $? = 0 ] || break; sleep 0.1; i=$((i+1)); done`,
      `gpuq_held; if [ $? = 0 ]; then echo 'released no'; else echo 'released yes'; fi`,
    ].join('\n'),
  };
}

/**
 * Streams a log file from a byte offset until the supervisor is gone, so a reconnecting
 * follower resumes exactly where it stopped. `tail` follows while a watcher lives; the watcher
 * ends when the supervisor lets go of job.lock or when the client that started the command is
 * gone (its parent changed), and a guard kills a `tail` that is stuck (opening a FIFO the job
 * put in the file's place) or that has nobody to print to, so no process of it outlives the
 * follow. Only a regular file is followed.
 */
export function followCommand(
  dir: string,
  file: 'stdout.log' | 'stderr.log' | 'samples.jsonl',
  fromByte: number,
): RemoteCommand {
  const f = sh(file);
  const from = Number(fromByte) + 1;
  return {
    purpose: `follow ${file}`,
    script: [
      READ_FUNCTIONS,
      `cd -- ${shPath(dir)} || exit 3`,
      `gpuq_reg ${f} || [ ! -e ${f} ] || exit 0`,
      `if ! gpuq_held; then [ -e ${f} ] || exit 0; exec dd if=${f} iflag=nofollow,nonblock,skip_bytes skip=${from - 1} bs=65536 status=none 2>/dev/null; fi`,
      `gpuq_up() { [ "$(cut -d' ' -f4 /proc/$$/stat 2>/dev/null)" = "$PPID" ]; }`,
      // Forked through $( ) so it is not tail's child: tail would not reap it, and --pid sees a zombie as alive.
      `w=$( ( while gpuq_up && gpuq_held; do sleep 0.5; done ) </dev/null >/dev/null 2>&1 & echo $! )`,
      `: $( ( while kill -0 "$w" 2>/dev/null; do sleep 0.5; done; n=0; while kill -0 $$ 2>/dev/null; do ` +
        `if ! gpuq_up || ! gpuq_reg ${f}; then n=$((n+1)); [ "$n" -ge 4 ] && { kill -KILL $$ 2>/dev/null; exit 0; }; fi; sleep 0.5; done ) </dev/null >/dev/null 2>&1 & )`,
      `exec tail -c +${from} -s 0.2 -F --pid="$w" -- ${f} 2>/dev/null`,
    ].join('\n'),
  };
}

/**
 * Prints a whole log (up to its size when the command starts: a log that grows while it is read,
 * or one that is not a regular file, cannot make it endless), or its last `lines` lines.
 */
export function readLogCommand(dir: string, file: 'stdout.log' | 'stderr.log', lines: number | null): RemoteCommand {
  const f = sh(file);
  return {
    purpose: `read ${file}`,
    script:
      `${READ_FUNCTIONS}\ncd -- ${shPath(dir)} || exit 3; gpuq_reg ${f} || exit 0; s=$(stat -c %s -- ${f} 2>/dev/null || echo 0); ` +
      `dd if=${f} iflag=nofollow,nonblock,count_bytes count="$s" bs=65536 status=none 2>/dev/null` +
      (lines === null ? '' : ` | tail -n ${Number(lines)}`),
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
      `${READ_FUNCTIONS}\ncd -- ${shPath(dir)} || exit 3; s=0; gpuq_reg ${f} && s=$(stat -c %s -- ${f} 2>/dev/null || echo 0); echo "$s"; ` +
      `[ "$s" -gt 0 ] || exit 0; dd if=${f} iflag=nofollow,nonblock,count_bytes count="$s" bs=65536 status=none 2>/dev/null` +
      (lines === null ? '' : ` | tail -n ${Number(lines)}`),
  };
}

/** Prints the byte size of a file in the job folder (0 if missing or not a regular file). */
export function sizeCommand(dir: string, file: 'stdout.log' | 'stderr.log' | 'samples.jsonl'): RemoteCommand {
  return {
    purpose: `measure ${file}`,
    script: `${READ_FUNCTIONS}\ncd -- ${shPath(dir)} || exit 3; gpuq_reg ${sh(file)} && stat -c %s -- ${sh(file)} 2>/dev/null || echo 0`,
  };
}

/** The node's GPU lock folder and GPU indices, for the queue part of the node status. */
export interface NodeLocks {
  dir: string;
  gpus: readonly number[];
}

/**
 * The GPU queue as seen from outside (README, "The GPU queue"), without touching a lock: `lockdir
 * yes|no`; per GPU, `lk lock|hold INDEX INODE HELD` (HELD 1 when /proc/locks shows a flock on
 * that inode) and `holder INDEX BASE64` (the first 4 KiB of gpu-N.lock, display only); per ticket
 * of the queue folder, `tk HELD NAME` (a ticket nobody holds is stale). Names outside the
 * ticket alphabet are skipped: the folder is writable by every account.
 */
function lockLines(locks: NodeLocks): string[] {
  const gpus = locks.gpus.map((g) => String(Math.trunc(g))).join(' ');
  return [
    `L=${shPath(locks.dir.replace(/\/+$/, '') || '/')}`,
    `if [ -d "$L" ]; then echo "lockdir yes"; { for g in ${gpus}; do for k in lock hold; do f="$L/gpu-$g.$k"; ` +
      `[ -f "$f" ] && [ ! -L "$f" ] && i=$(stat -c %i -- "$f" 2>/dev/null) && echo "lk $k $g $i"; done; done; ` +
      `if [ -d "$L/queue" ]; then (cd -- "$L/queue" 2>/dev/null && for f in q-*; do ` +
      `case $f in *[!A-Za-z0-9_.-]*) continue;; esac; [ -f "$f" ] && [ ! -L "$f" ] && ` +
      `i=$(stat -c %i -- "$f" 2>/dev/null) && echo "tk $i $f"; done | head -n 5000); fi; } | ` +
      `timeout -s KILL 5 awk 'FILENAME=="/proc/locks" { if ($2=="FLOCK") { n=split($6,a,":"); h[a[n]]=1 } next } ` +
      `$1=="lk" { print "lk", $2, $3, $4, (($4 in h)?1:0); next } $1=="tk" { print "tk", (($2 in h)?1:0), $3 }' /proc/locks - 2>/dev/null; ` +
      `for g in ${gpus}; do f="$L/gpu-$g.lock"; [ -f "$f" ] && [ ! -L "$f" ] && ` +
      `echo "holder $g $(timeout -s KILL 2 head -c 4096 -- "$f" 2>/dev/null | base64 -w0)"; done; ` +
      `else echo "lockdir no"; fi`,
  ];
}

/**
 * What `gpuq nodes` and node choice need to know of a node, as `key value` lines: load, CPUs,
 * memory, boot id, running gpuq jobs under `workdir`, and with `full` also disk and inodes of
 * workdir (or its nearest existing parent) and the GPUs (nvidia-smi) with who holds them.
 * Every external tool is bounded by `timeout`, so a hung mount or driver cannot hang it. With
 * `locks`, also the node's GPU queue and leases (lockLines).
 */
export function nodeStatusCommand(workdir: string, full: boolean, locks: NodeLocks | null = null): RemoteCommand {
  const lines = [
    `w=${shPath(workdir.replace(/\/+$/, '') || '/')}`,
    `echo "host $(hostname 2>/dev/null)"`,
    `echo "load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"`,
    `echo "cpus $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"`,
    `echo "boot $(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"`,
    // A job runs while its supervisor holds job.lock; only folders whose status says running are checked.
    // grep skips FIFOs and devices (-D skip) and is bounded in time; a job.lock that is not a
    // regular file is not counted.
    `n=0; if [ -d "$w/jobs" ]; then n=$(timeout -s KILL 20 grep -l -s -D skip -d skip '"state":"running"' ` +
      `"$w"/jobs/*/status.json 2>/dev/null | while IFS= read -r s; do l="\${s%/status.json}/job.lock"; ` +
      `[ -f "$l" ] && [ ! -L "$l" ] || continue; timeout -s KILL 5 flock -ns "$l" true 2>/dev/null || echo x; ` +
      `done | wc -l); fi; echo "jobs $n"`,
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
        `j=$(tr '\\0' '\\n' <"/proc/$p/environ" 2>/dev/null | ` +
        `sed -n 's/^GPUQ_JOB_ID=\\([A-Za-z0-9_.-]\\{1,64\\}\\)$/\\1/p' | head -n 1); ` +
        `echo "app $u, $p, $m, $(ps -o user= -p "$p" 2>/dev/null | tr -d ' '), $j"`,
      `  done`,
      `else echo "nogpu"; fi`,
    );
  }
  if (locks) lines.push(...lockLines(locks));
  lines.push('exit 0');
  return { purpose: 'read the node status', script: lines.join('\n') };
}

/** One job folder for pruneCommand: the job's id and the folder the ledger recorded for it. */
export interface PruneEntry {
  id: string;
  dir: string;
}

/**
 * Measures (and with `remove`, removes) job folders, one line per job: `job ID OUTCOME BYTES`.
 * The folder removed is `<workdir>/jobs/ID` with the workdir resolved (`cd -P`), only when it is a
 * real folder there (not a link, and resolving to itself), its recorded path (when absolute) is
 * that same path, and its supervisor no longer holds job.lock. A job could have left it hostile
 * (folders it made unreadable or unwritable, links out of it): `du` and `find` never follow a
 * link nor leave its file system, folders lacking the owner's rwx get it back (never through a
 * link: find does not follow them), then `rm -rf --one-file-system` on the resolved path alone.
 * Outcomes: removed, measured (not removing), absent, link, notdir, outside (not where the
 * workdir puts it), held (its supervisor lives), failed (some of it is left). BYTES is the disk
 * usage measured before removal. Every tool is bounded in time. The script travels on stdin.
 */
export function pruneCommand(workdir: string, entries: readonly PruneEntry[], remove: boolean): RemoteCommand {
  const lines = [
    READ_FUNCTIONS,
    `w=$(cd -P -- ${shPath(`${workdir.replace(/\/+$/, '')}/jobs`)} 2>/dev/null && pwd -P) || w=`,
    `rm_ok=${remove ? 1 : 0}`,
    'gpuq_prune() {',
    '  local id=$1 rec=$2 d r b',
    '  [ -n "$w" ] || { echo "job $id absent 0"; return; }',
    '  d="$w/$id"',
    '  case $rec in /*) [ "$rec" = "$d" ] || { echo "job $id outside 0"; return; };; esac',
    '  [ -L "$d" ] && { echo "job $id link 0"; return; }',
    '  [ -e "$d" ] || { echo "job $id absent 0"; return; }',
    '  [ -d "$d" ] || { echo "job $id notdir 0"; return; }',
    '  r=$(cd -P -- "$d" 2>/dev/null && pwd -P)',
    '  [ "$r" = "$d" ] || { echo "job $id outside 0"; return; }',
    '  ( cd -- "$r" && gpuq_held ); [ $? = 0 ] && { echo "job $id held 0"; return; }',
    '  b=$(timeout -s KILL 60 du -s -x -P -B1 -- "$r" 2>/dev/null | cut -f1); case $b in ""|*[!0-9]*) b=0;; esac',
    '  [ "$rm_ok" = 1 ] || { echo "job $id measured $b"; return; }',
    '  timeout -s KILL 120 find "$r" -xdev -type d ! -perm -u=rwx -exec chmod u+rwx {} \\; 2>/dev/null',
    '  timeout -s KILL 300 rm -rf --one-file-system -- "$r" 2>/dev/null',
    '  if [ -e "$r" ] || [ -L "$r" ]; then echo "job $id failed $b"; else echo "job $id removed $b"; fi',
    '}',
    ...entries.map((e) => `gpuq_prune ${sh(e.id)} ${sh(e.dir)}`),
    'exit 0',
  ];
  return {
    purpose: remove ? 'remove job folders' : 'measure job folders',
    script: 'eval "$(cat)"',
    stdin: `${lines.join('\n')}\n`,
  };
}

/**
 * Picks the node's python3 as the wrapper does (the system's before a PATH shim) into `$py`;
 * without one the command fails (exit 3) saying what it was for.
 */
function pythonLines(what: string): string {
  return (
    `py=; for c in /usr/bin/python3 /usr/local/bin/python3; do [ -x "$c" ] && { py=$c; break; }; done; ` +
    `[ -n "$py" ] || py=$(command -v python3) || { echo ${sh(`gpuq needs python3 on this node to ${what}`)} >&2; exit 3; }`
  );
}

/**
 * Writes an upload stream (core/file-frames, on stdin) into the job folder's work/ with
 * templates/unpack.py, refusing more than `maxBytes`. The script travels as an argument:
 * nothing is taken from the job folder.
 */
export function unpackCommand(dir: string, script: string, maxBytes: number): RemoteCommand {
  return {
    purpose: 'write the uploaded files',
    script: [
      `umask 077; cd -- ${shPath(dir)} || exit 3`,
      pythonLines('unpack the uploaded files'),
      `exec "$py" -I -c ${sh(script)} ${sh(maxBytes)}`,
    ].join('\n'),
  };
}

/**
 * Streams files of the job's work/ (core/file-frames) with templates/collect.py: `paths`, or
 * by default what the job created (not `entry` nor the names in uploads.json). Exit 4: no such
 * folder. With `root` (a folder of the job folder other than work/, such as gradings/2), from
 * there instead; exit 5 when it is not there. The script travels as an argument: the job cannot
 * have changed it.
 */
export function collectCommand(
  dir: string,
  script: string,
  caps: { fileBytes: number; totalBytes: number },
  entry: string,
  paths: readonly string[],
  root = 'work',
): RemoteCommand {
  const rootArg = root === 'work' ? [] : [`--root=${root}`];
  return {
    purpose: 'read the files of the job',
    script: [
      `cd -- ${shPath(dir)} 2>/dev/null || { echo "gpuq collect: the job folder is gone" >&2; exit 4; }`,
      pythonLines('copy files back'),
      `exec "$py" -I -c ${sh(script)} ${shWords([...rootArg, caps.fileBytes, caps.totalBytes, entry, ...paths])}`,
    ].join('\n'),
  };
}

/** The longest `gpuListCommand` lets nvidia-smi run (a hung driver must not hang a submit). */
export const GPU_LIST_TIMEOUT_S = 5;

/**
 * Lists the GPU indices nvidia-smi sees on a node, as `gpu N` lines and then `rc CODE` (its exit
 * status; 124 or 137 when it ran past GPU_LIST_TIMEOUT_S), or `missing` without nvidia-smi.
 * For a local node without `gpus` in the config (services/local-gpus.ts); parsed by node/gpu-list.
 */
export function gpuListCommand(): RemoteCommand {
  return {
    purpose: 'list the GPUs',
    script: [
      'command -v nvidia-smi >/dev/null 2>&1 || { echo missing; exit 0; }',
      `timeout -k 1 ${GPU_LIST_TIMEOUT_S} nvidia-smi --query-gpu=index --format=csv,noheader,nounits </dev/null 2>/dev/null ` +
        `| head -n 1024 | sed 's/^/gpu /'; echo "rc \${PIPESTATUS[0]}"`,
      'exit 0',
    ].join('\n'),
  };
}

/** A competition for competitionCheckCommand: the config's folders and grader command. */
export interface CheckedCompetition {
  data: string | null;
  answers: string | null;
  grader: readonly string[] | null;
}

/** The longest `gpuq competitions check` lets templates/fingerprint.py read a node's folders. */
export const FINGERPRINT_TIMEOUT_S = 300;

/**
 * `gpuq competitions check` on one node, in one round trip: prints `home $HOME`; per competition
 * (by its index) `dir I data|answers ok|missing|notdir|unreadable`, `grader I ok WHERE|missing|notexec`
 * (its first argument: at its path when it has a "/", else on PATH) and `garg I J missing` for
 * each other argument that names an absolute path that is not there; then the fingerprints of
 * the folders that are there, from templates/fingerprint.py run with the node's python3 (the
 * script travels as an argument; its cache is `<workdir>/.cache/fingerprints.json`): `fp JSON`,
 * `fp-timeout` past `timeoutS`, or `python none`. Read by core/competition-check.
 */
export function competitionCheckCommand(
  workdir: string,
  comps: readonly CheckedCompetition[],
  fingerprintScript: string,
  timeoutS: number = FINGERPRINT_TIMEOUT_S,
): RemoteCommand {
  const lines = [
    `w=${shPath(workdir.replace(/\/+$/, '') || '/')}`,
    `printf 'home %s\\n' "$HOME"`,
    'fp=()',
    'gpuq_cd() { local s; if [ ! -e "$3" ]; then s=missing; elif [ ! -d "$3" ]; then s=notdir; ' +
      'elif [ ! -r "$3" ] || [ ! -x "$3" ]; then s=unreadable; else s=ok; fp+=("$3"); fi; echo "dir $1 $2 $s"; }',
    'gpuq_cg() { local r; case $2 in */*) if [ ! -e "$2" ]; then echo "grader $1 missing"; ' +
      'elif [ -f "$2" ] && [ -x "$2" ]; then echo "grader $1 ok $2"; else echo "grader $1 notexec"; fi;; ' +
      '*) if r=$(type -P -- "$2" 2>/dev/null) && [ -n "$r" ]; then echo "grader $1 ok $r"; else echo "grader $1 missing"; fi;; esac; }',
  ];
  comps.forEach((c, i) => {
    if (c.data !== null) lines.push(`gpuq_cd ${i} data ${shPath(c.data)}`);
    if (c.answers !== null) lines.push(`gpuq_cd ${i} answers ${shPath(c.answers)}`);
    // The grader's words as grade.py gives them to the grader: no "~" expanded.
    if (c.grader && c.grader.length > 0) {
      lines.push(`gpuq_cg ${i} ${sh(c.grader[0] as string)}`);
      c.grader.forEach((a, j) => {
        if (j > 0 && a.startsWith('/')) lines.push(`[ -e ${sh(a)} ] || echo "garg ${i} ${j} missing"`);
      });
    }
  });
  lines.push(
    'if [ "${#fp[@]}" -gt 0 ]; then',
    '  py=; for c in /usr/bin/python3 /usr/local/bin/python3; do [ -x "$c" ] && { py=$c; break; }; done',
    '  [ -n "$py" ] || py=$(command -v python3) || py=',
    '  if [ -z "$py" ]; then echo "python none"; else',
    `    out=$(timeout -s KILL ${Math.max(1, Math.trunc(timeoutS))} "$py" -I -c ${sh(fingerprintScript)} ` +
      '--cache "$w/.cache/fingerprints.json" "${fp[@]}" </dev/null 2>/dev/null); rc=$?',
    '    if [ "$rc" = 137 ]; then echo fp-timeout; else printf \'fp %s\\n\' "$out" | head -n 1; fi',
    '  fi',
    'fi',
    'exit 0',
  );
  return { purpose: 'check the competitions', script: lines.join('\n') };
}

/**
 * `gpuq nodes`' look at Docker (core/docker-info.ts parses it): `absent` without the docker
 * command; else `rc N` and `docker info`'s line (version, cgroup version and driver, security
 * options) or its error; then removes the containers of this workdir's jobs whose supervisor
 * died (lock free, no final status: a kept container has one), printing `removed NAME` each.
 */
export function dockerProbeCommand(command: readonly string[], workdir: string): RemoteCommand {
  const d = shWords(command);
  return {
    purpose: 'look at Docker',
    script: [
      `command -v ${sh(command[0] ?? 'docker')} >/dev/null 2>&1 || { echo absent; exit 0; }`,
      `out=$(timeout -s KILL 15 ${d} info --format '{{.ServerVersion}}\t{{.CgroupVersion}}\t{{.CgroupDriver}}\t{{json .SecurityOptions}}' 2>&1); rc=$?`,
      `echo "rc $rc"; printf '%s\\n' "$out" | tr -d '\\r' | grep -v '^WARNING' | head -n 1 | head -c 2000; echo`,
      `[ "$rc" = 0 ] || exit 0`,
      `cd -- ${shPath(workdir)}/jobs 2>/dev/null || exit 0`,
      `for n in $(timeout -s KILL 15 ${d} ps -a --filter label=gpuq.job --format '{{.Names}}' 2>/dev/null); do`,
      `  [[ "$n" =~ ^gpuq-([a-z0-9]{1,40})(-grade)?$ ]] || continue; j=\${BASH_REMATCH[1]}`,
      `  [ -d "$j" ] && [ -f "$j/job.lock" ] && [ ! -L "$j/job.lock" ] || continue`,
      `  flock -n "$j/job.lock" true 2>/dev/null || continue`,
      `  grep -q '"state":"exited"' "$j/status.json" 2>/dev/null && continue`,
      `  timeout -s KILL 20 ${d} rm -f "$n" >/dev/null 2>&1 && echo "removed $n"`,
      `done`,
    ].join('\n'),
  };
}
