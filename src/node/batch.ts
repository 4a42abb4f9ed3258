/**
 * Bulk launch (`gpuq submit a.py b.py …`) as data: one script that makes every job's folder,
 * writes its files and starts its supervisor, in one round trip whatever the number of jobs.
 * Pure: src/node/protocol.ts runs it (launchBatch) and this module reads its answer.
 *
 * What makes it cheap on the node: no fork per file. The files every job shares (monitor.py,
 * queue.py, and the part of the rendered wrappers that is the same for all) travel once, as
 * bash ANSI-C strings (`$'…'`), and are written with the `printf` builtin; one `mkdir` and one
 * `chmod` serve all the folders. What stays per job: its folder's lock (`flock`) and its
 * supervisor (`setsid`). The first job is started alone and waited for until its supervisor is
 * past the checks that refuse a node (the GPU lock folder, a required trust boundary): a node
 * that refuses refuses once, and nothing else is started there.
 */
import { sh, shPath } from '../core/quote.js';
import { parseStatusFile } from '../core/job-files.js';
import type { StatusFile } from '../core/types.js';
import type { RemoteCommand } from '../transport/transport.js';
import { sectionMarker } from './commands.js';

/** One job of a batch: its folder, its rendered supervisor and its program (small, inline). */
export interface BatchJob {
  /** The job folder on the node ("~/" allowed). */
  dir: string;
  wrapper: string;
  /** Path inside the job folder, e.g. "work/solution.py". */
  programName: string;
  program: Buffer;
  executable: boolean;
}

/** A bash ANSI-C string (`$'…'`) of exactly `text`'s bytes; null when they hold a NUL (no bash string can). */
export function ansiC(text: string | Buffer): string | null {
  const b = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  if (b.includes(0)) return null;
  let out = "$'";
  let run = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    if (c >= 0x20 && c < 0x7f && c !== 0x27 && c !== 0x5c) continue;
    out += b.toString('latin1', run, i);
    out += c === 0x0a ? '\\n' : `\\x${c.toString(16).padStart(2, '0')}`;
    run = i + 1;
  }
  return `${out}${b.toString('latin1', run)}'`;
}

/**
 * The longest prefix and suffix that all `texts` share (not overlapping within any of them),
 * and what is left of each between them: the rendered wrappers differ only in their header.
 */
export function splitCommon(texts: readonly string[]): { prefix: string; suffix: string; middles: string[] } {
  const first = texts[0] ?? '';
  const shortest = Math.min(...texts.map((t) => t.length));
  let p = 0;
  while (p < shortest && texts.every((t) => t.charCodeAt(p) === first.charCodeAt(p))) p++;
  let s = 0;
  while (
    s < shortest - p &&
    texts.every((t) => t.charCodeAt(t.length - 1 - s) === first.charCodeAt(first.length - 1 - s))
  )
    s++;
  // Cut on a UTF-16 boundary only (a surrogate pair stays whole).
  const low = (t: string, i: number) => i > 0 && i < t.length && /[\udc00-\udfff]/.test(t.charAt(i));
  while (p > 0 && texts.some((t) => low(t, p))) p--;
  while (s > 0 && texts.some((t) => low(t, t.length - s))) s--;
  return {
    prefix: first.slice(0, p),
    suffix: first.slice(first.length - s),
    middles: texts.map((t) => t.slice(p, t.length - s)),
  };
}

/** A file's content as a bash statement writing it to `target` (a quoted word). */
function writeFile(target: string, content: string | Buffer): string {
  const lit = ansiC(content);
  if (lit !== null) return `printf '%s' ${lit} >${target}`;
  const b64 = Buffer.from(content)
    .toString('base64')
    .replace(/.{1,76}/g, '$&\n');
  // The delimiter has "_", which base64 never does.
  return `base64 -d >${target} <<'GPUQ_EOF'\n${b64}GPUQ_EOF`;
}

/** Locks each descriptor given as INDEX:FD (fcntl.flock, not blocking); prints "INDEX locked" or "INDEX busy". */
const LOCK_ALL_PY = [
  'import fcntl, sys',
  'for a in sys.argv[1:]:',
  '    i, fd = a.split(":")',
  '    try:',
  '        fcntl.flock(int(fd), fcntl.LOCK_EX | fcntl.LOCK_NB)',
  '        print(i, "locked")',
  '    except (OSError, ValueError):',
  '        print(i, "busy")',
].join('\n');

/**
 * How long the batch waits for the first supervisor's answer (as long as a one-job launch), and
 * then for the others' (what has not answered by then is recorded as launched, unconfirmed).
 */
export const BATCH_FIRST_MS = 5000;
export const BATCH_REST_MS = 1000;

/**
 * The one script of a bulk launch (see the module comment). Prints, per job, a marker line
 * `@@gpuq-NONCE@@ job I KIND SUPERVISOR_PID ABS_DIR` and, for KIND `status`, status.json, or for
 * `refused` / `failed` the supervisor's last words. KIND: status (the supervisor wrote its
 * status), launched (started, no status yet), refused (exit 75's case: the GPU lock folder),
 * failed (the supervisor ended without a status), busy (job.lock held already), skipped (not
 * started: the first job was refused or failed). Ends with `@@gpuq-NONCE@@ boot BOOT_ID`.
 */
export function launchBatchCommand(
  jobs: readonly BatchJob[],
  shared: { monitor: string; queue?: string },
  nonce: string,
): RemoteCommand {
  const mark = sectionMarker(nonce, '');
  const split = splitCommon(jobs.map((j) => j.wrapper));
  const lines: string[] = [
    'set -e; umask 077',
    'command -v flock >/dev/null && command -v setsid >/dev/null || ' +
      '{ echo "gpuq needs flock and setsid (util-linux) on this node" >&2; exit 3; }',
    'command -v python3 >/dev/null || ' +
      'echo "python3 is missing on this node: no resource samples and no memory watch" >&2',
    `gpuq_m=${ansiC(shared.monitor) ?? "''"}`,
    `gpuq_q=${ansiC(shared.queue ?? '') ?? "''"}`,
    `gpuq_p=${ansiC(split.prefix) ?? "''"}`,
    `gpuq_s=${ansiC(split.suffix) ?? "''"}`,
    `gpuq_d=(${jobs.map((j) => shPath(j.dir)).join(' ')})`,
    'mkdir -p -- "${gpuq_d[@]/%//work}"',
    'chmod 700 -- "${gpuq_d[@]}"',
    'gpuq_a=(); gpuq_x=()',
  ];
  jobs.forEach((j, i) => {
    const mid = split.middles[i] as string;
    const midLit = ansiC(mid);
    lines.push(`cd -P -- "\${gpuq_d[${i}]}"; gpuq_a[${i}]=$PWD`);
    lines.push(`printf '%s' "$gpuq_m" >monitor.py`);
    if (shared.queue !== undefined) lines.push(`printf '%s' "$gpuq_q" >queue.py`);
    if (midLit !== null) lines.push(`printf '%s' "$gpuq_p" ${midLit} "$gpuq_s" >run.sh`);
    else lines.push(writeFile('run.sh', j.wrapper));
    lines.push(writeFile(sh(j.programName), j.program));
    lines.push(`gpuq_x+=("\${gpuq_a[${i}]}/run.sh")`);
    if (j.executable) lines.push(`gpuq_x+=("\${gpuq_a[${i}]}"/${sh(j.programName)})`);
  });
  lines.push(
    'chmod 700 -- "${gpuq_x[@]}"',
    'set +e',
    'gpuq_boot=unknown; read -r gpuq_boot </proc/sys/kernel/random/boot_id 2>/dev/null',
    // gpuq_k[I]: what became of job I; gpuq_sp[I]: its supervisor's pid; gpuq_f[I]: its job.lock.
    'gpuq_k=(); gpuq_sp=(); gpuq_f=()',
    `gpuq_n=${jobs.length}`,
    'for ((j = 0; j < gpuq_n; j++)); do exec {f}>>"${gpuq_a[$j]}/job.lock" && gpuq_f[$j]=$f || gpuq_k[$j]=failed; done',
    // Every lock in one process where python3 exists (a fork each otherwise): the locks belong
    // to the descriptors this shell holds, and each supervisor inherits its own as fd 9.
    'gpuq_locks() {',
    '  local j r a=()',
    '  for j in "${!gpuq_f[@]}"; do a+=("$j:${gpuq_f[$j]}"); done',
    '  [ ${#a[@]} -gt 0 ] || return 0',
    // the system's python before a PATH shim (pyenv's costs ~100 ms a start), as the supervisor does
    '  local py=',
    '  for py in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do [ -x "$py" ] && break; py=; done',
    '  if [ -n "$py" ]; then',
    `    while read -r j r; do gpuq_k[$j]=$r; done < <("$py" -I -S -c ${sh(LOCK_ALL_PY)} "\${a[@]}")`,
    '  else',
    '    for ((j = 0; j < gpuq_n; j++)); do [ -n "${gpuq_f[$j]}" ] || continue; flock -xn "${gpuq_f[$j]}" && gpuq_k[$j]=locked || gpuq_k[$j]=busy; done',
    '  fi',
    '}',
    'gpuq_locks',
    // The child that becomes job $1's supervisor: its lock as fd 9 and no other job's; with a
    // gate ($2 = 1), it first waits until the gate's last writer is gone (all are forked).
    'gpuq_child() {',
    '  local f',
    '  exec 9>&"${gpuq_f[$1]}"',
    '  for f in "${gpuq_f[@]}"; do exec {f}>&-; done',
    '  if [ "$2" = 1 ] && [ -n "${gpuq_gr:-}" ]; then exec {gpuq_gw}>&-; read -r -u "$gpuq_gr" _; exec {gpuq_gr}<&-; fi',
    '  cd -- "${gpuq_a[$1]}" && exec setsid bash ./run.sh',
    '  exit 126',
    '}',
    'gpuq_start() {',
    '  [ "${gpuq_k[$1]}" = locked ] || return 0',
    '  ( gpuq_child "$1" "$2" ) </dev/null >>"${gpuq_a[$1]}/supervisor.log" 2>&1 &',
    '  gpuq_sp[$1]=$!; gpuq_k[$1]=launched',
    '}',
    // Whether job $1's supervisor has answered: refused, a status, or gone without one.
    // Builtins only (one `sleep` a turn for all jobs).
    'gpuq_look() {',
    '  local st=',
    '  [ "${gpuq_k[$1]}" = launched ] || return 0',
    '  cd -- "${gpuq_a[$1]}" || return 0',
    '  if [ -e lease.refused ]; then gpuq_k[$1]=refused; return 0; fi',
    '  IFS= read -r st 2>/dev/null <status.json',
    '  case $st in *\'"state":"\'*) gpuq_k[$1]=status; return 0;; esac',
    '  [ -e boundary.refused ] && { gpuq_k[$1]=failed; return 0; }',
    '  kill -0 "${gpuq_sp[$1]}" 2>/dev/null || gpuq_k[$1]=failed',
    '  return 0',
    '}',
    'gpuq_start 0 0',
    // Waits without a fork: a read that times out on a FIFO nobody writes to (else `sleep`).
    `gpuq_z=; gpuq_zp="\${gpuq_a[0]%/*}/.nap-${nonce}"`,
    'mkfifo -m 600 -- "$gpuq_zp" 2>/dev/null && exec {gpuq_z}<>"$gpuq_zp"; rm -f -- "$gpuq_zp"',
    'gpuq_nap() { if [ -n "$gpuq_z" ]; then read -r -t 0.02 -u "$gpuq_z" _; else sleep 0.02; fi; }',
    // Microseconds since the epoch (bash 5), else whole seconds.
    'gpuq_now() { gpuq_us=${EPOCHREALTIME/[.,]/}; [ -n "$gpuq_us" ] || gpuq_us=$((SECONDS * 1000000)); }',
    `gpuq_now; gpuq_end=$((gpuq_us + ${BATCH_FIRST_MS * 1000}))`,
    'while gpuq_look 0; [ "${gpuq_k[0]}" = launched ]; do gpuq_now; [ "$gpuq_us" -lt "$gpuq_end" ] || break; gpuq_nap; done',
    // The others are forked behind a gate and let go together: forking them does not compete
    // with supervisors already at work.
    'case ${gpuq_k[0]} in',
    '  refused|failed) for ((j = 1; j < gpuq_n; j++)); do [ "${gpuq_k[$j]}" = locked ] && gpuq_k[$j]=skipped; done;;',
    '  *) if [ "$gpuq_n" -gt 1 ]; then',
    `    gpuq_gate="\${gpuq_a[0]%/*}/.gate-${nonce}"`,
    '    mkfifo -m 600 -- "$gpuq_gate" && exec {gpuq_gw}<>"$gpuq_gate" {gpuq_gr}<"$gpuq_gate"',
    '    rm -f -- "$gpuq_gate"',
    '    for ((j = 1; j < gpuq_n; j++)); do gpuq_start "$j" 1; done',
    '    [ -n "${gpuq_gr:-}" ] && exec {gpuq_gw}>&- {gpuq_gr}<&-',
    '  fi;;',
    'esac',
    'for f in "${gpuq_f[@]}"; do exec {f}>&-; done',
    `gpuq_now; gpuq_end=$((gpuq_us + ${BATCH_REST_MS * 1000}))`,
    'while :; do w=0; for ((j = 1; j < gpuq_n; j++)); do gpuq_look "$j"; [ "${gpuq_k[$j]}" = launched ] && w=1; done',
    '  [ "$w" = 0 ] && break; gpuq_now; [ "$gpuq_us" -lt "$gpuq_end" ] || break; gpuq_nap; done',
    'for ((j = 0; j < gpuq_n; j++)); do',
    `  printf '%s job %s %s %s %s\\n' ${sh(mark)} "$j" "\${gpuq_k[$j]}" "\${gpuq_sp[$j]:-0}" "\${gpuq_a[$j]}"`,
    '  cd -- "${gpuq_a[$j]}" 2>/dev/null || continue',
    '  case ${gpuq_k[$j]} in',
    // status.json, at most 64 KiB, when it is a regular file (the supervisor writes it by rename)
    '    status) st=; [ -f status.json ] && [ ! -L status.json ] && IFS= read -r -N 65536 st <status.json; printf \'%s\\n\' "$st";;',
    "    refused) grep '^gpuq: ' supervisor.log 2>/dev/null | tail -n 2;;",
    '    failed) tail -n 5 supervisor.log 2>/dev/null;;',
    '  esac',
    'done',
    `printf '%s boot %s\\n' ${sh(mark)} "$gpuq_boot"`,
  );
  return { purpose: 'start the jobs', script: 'eval "$(cat)"', stdin: `${lines.join('\n')}\n` };
}

/** What the batch said of one job. */
export interface BatchOutcome {
  kind: 'status' | 'launched' | 'refused' | 'failed' | 'busy' | 'skipped';
  /** The supervisor's pid as launched (0: none). */
  supervisorPid: number;
  /** The job folder's absolute path on the node ('' when it was never reached). */
  dir: string;
  /** status.json, checked against its shape (kind status). */
  status: StatusFile | null;
  /** The supervisor's last words (kinds refused and failed). */
  said: string;
}

/** Reads launchBatchCommand's answer for `count` jobs; a job it does not mention is `failed`. */
export function parseBatchOutput(
  text: string,
  nonce: string,
  count: number,
): { jobs: BatchOutcome[]; bootId: string | null } {
  const mark = `${sectionMarker(nonce, '')} `;
  const jobs: BatchOutcome[] = Array.from({ length: count }, () => ({
    kind: 'failed',
    supervisorPid: 0,
    dir: '',
    status: null,
    said: '',
  }));
  let bootId: string | null = null;
  let cur: { i: number; body: string[] } | null = null;
  const close = () => {
    if (!cur) return;
    const o = jobs[cur.i] as BatchOutcome;
    const body = cur.body.join('\n').trim();
    if (o.kind === 'status') {
      o.status = parseStatusFile(body);
      if (o.status === null) o.kind = 'launched';
    } else o.said = body;
    cur = null;
  };
  for (const line of text.split('\n')) {
    if (!line.startsWith(mark)) {
      cur?.body.push(line);
      continue;
    }
    close();
    const rest = line.slice(mark.length);
    const boot = /^boot ([\w-]{1,64})$/.exec(rest);
    if (boot) {
      bootId = boot[1] === 'unknown' ? null : (boot[1] as string);
      continue;
    }
    const m = /^job (\d+) (status|launched|refused|failed|busy|skipped) (\d{1,10}) (.*)$/.exec(rest);
    if (!m) continue;
    const i = Number(m[1]);
    if (i >= count) continue;
    jobs[i] = {
      kind: m[2] as BatchOutcome['kind'],
      supervisorPid: Number(m[3]),
      dir: m[4] as string,
      status: null,
      said: '',
    };
    cur = { i, body: [] };
  }
  close();
  return { jobs, bootId };
}
