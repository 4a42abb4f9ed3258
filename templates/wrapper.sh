#!/usr/bin/env bash
# gpuq supervisor for one job, rendered from templates/wrapper.sh by src/node/wrapper.ts.
# It runs in the job's folder, detached in its own session (setsid), holding job.lock
# (fd 9, taken by the launcher) for as long as it lives: `flock -s job.lock` in a client
# returns exactly when it is gone, whether it finished or died.
# Everything it learns goes to status.json (written atomically: tmp file + rename).
set -u
shopt -s execfail

# python3 for the monitor (standard library only): the system's before a PATH shim (pyenv's
# costs ~100 ms a start).
find_python() {
  local p
  PYTHON_SYS=
  for p in /usr/bin/python3 /usr/local/bin/python3; do
    [ -x "$p" ] && { PYTHON_SYS=$p; return 0; }
  done
  p=$(command -v python3 2>/dev/null) && [ -x "$p" ] && PYTHON_SYS=$p
}

# Become a child subreaper (prctl PR_SET_CHILD_SUBREAPER, which survives exec) and run on as
# the same process: orphans of the job (double-forked, setsid'd, even with a cleared
# environment) are re-parented to this supervisor instead of init, so the monitor and the final
# sweep still find them. The lock on fd 9 and the session stay, as the pid does.
# Called with the script's arguments: the re-executed script gets --subreaper=1 (or 0).
become_subreaper() {
  SUBREAPER=0
  if [ "${1:-}" = --subreaper=1 ]; then
    SUBREAPER=1
  elif [ -z "${1:-}" ] && [ -n "$PYTHON_SYS" ]; then
    # _ctypes, not ctypes: the package's import costs this python start a third more.
    exec "$PYTHON_SYS" -I -S -c 'import os, sys
try:
    import _ctypes
    class Int(_ctypes._SimpleCData):
        _type_ = "i"
    class Libc(object):
        _handle = _ctypes.dlopen(None)
    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = Int
    ok = Function(("prctl", Libc()))(36, 1, 0, 0, 0) == 0
except Exception:
    ok = False
os.execv(sys.argv[1], [sys.argv[1], sys.argv[2], "--subreaper=%d" % ok])' "$BASH" "$0"
  fi
}

# --- what the job is: rendered by src/node/wrapper.ts
JOB_ID={{JOB_ID}}
# The job's command line, run in work/ (the program was uploaded there).
COMMAND=({{@COMMAND}})
JOB_ENV=({{@ENV}})
TIMEOUT_S={{TIMEOUT_S}}
GRACE_S={{GRACE_S}}
MEMORY_BYTES={{MEMORY_BYTES}}
PIDS_MAX={{PIDS}}
FILES_MAX={{FILES}}
FILE_SIZE_BYTES={{FILE_SIZE_BYTES}}
CPU_TIME_S={{CPU_TIME_S}}
# Default thread count = the node's cores * SHARE_NUM / SHARE_DEN (the job's part of the GPUs).
SHARE_NUM={{SHARE_NUM}}
SHARE_DEN={{SHARE_DEN}}
CUDA_DEVICES={{CUDA_DEVICES}}
USE_CGROUPS={{USE_CGROUPS}}
# Where the cgroup hierarchies are mounted (/sys/fs/cgroup; tests point it at a stand-in).
CG_ROOT={{CGROUP_ROOT}}
# The trust boundary (templates/README.md, "Who may trust what"): auto (the best this node
# gives: a separate uid as root, user+mount+pid namespaces otherwise) or none.
BOUNDARY_MODE={{BOUNDARY_MODE}}
# As root: the account the program runs as; empty for a per-job uid from UID_BASE on.
RUN_AS={{RUN_AS}}
# 1: refuse to start the program without a boundary (a competition that requires one).
REQUIRE_BOUNDARY={{REQUIRE_BOUNDARY}}
# The GPU queue (templates/README.md, "GPU leases and the queue"): how many GPUs the job needs,
# the node's GPUs to choose from, the lock folder shared by every account, the job's priority,
# who submitted it, and the memory (MiB) over which a process outside gpuq makes a GPU busy.
NODE_NAME={{NODE_NAME}}
NEED_GPUS={{NEED_GPUS}}
NODE_GPUS=({{@NODE_GPUS}})
LOCK_DIR={{LOCK_DIR}}
PRIORITY={{PRIORITY}}
SUBMITTER={{SUBMITTER}}
FOREIGN_MIB={{FOREIGN_MIB}}
# 1 on a Slurm node: Slurm allocated the GPUs (no lease here); slurm_gpus records them.
FROM_SLURM={{FROM_SLURM}}
# Folders the program must not see (the local node's gpuq state folder: ledger, known_hosts).
HIDE_DIRS=({{@HIDE_DIRS}})
# The competition (issue 13; templates/grade.py): the data folder the program gets as $GPUQ_DATA
# (read-only behind a boundary), the answers folder it must never see, and grade.py's arguments
# (empty: the job is not graded).
DATA_DIR={{DATA_DIR}}
ANSWERS_DIR={{ANSWERS_DIR}}
GRADE=({{@GRADE}})
UID_BASE=2000000000
# Root-owned folder of per-uid lease files (flock: the kernel frees a lease when its holder dies).
UID_LEASES=/run/gpuq/uids
# PATH of a program that runs as another uid (the node account's PATH may be its own shims).
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# --isolation docker (templates/README.md, "Docker isolation"): the docker command, the image,
# the `docker run` options built by src/core/docker-args.ts (with @GPUQ_…@ tokens the node fills
# in), the container's name, and whether to keep it after the job for a post-mortem.
ISOLATION={{ISOLATION}}
DOCKER=({{@DOCKER}})
DOCKER_IMAGE={{DOCKER_IMAGE}}
DOCKER_OPTS=({{@DOCKER_OPTS}})
CONTAINER={{CONTAINER}}
KEEP_CONTAINER={{KEEP_CONTAINER}}

MONITOR="$PWD/monitor.py"
QUEUE="$PWD/queue.py"

now_ms() {
  if [ -n "${EPOCHREALTIME:-}" ]; then local t=${EPOCHREALTIME/[.,]/}; echo "${t:0:13}"; else date +%s%3N; fi
}
# now_ms into the variable named $1, without the fork of $(now_ms).
now_ms_to() {
  if [ -n "${EPOCHREALTIME:-}" ]; then local t=${EPOCHREALTIME/[.,]/}; printf -v "$1" '%s' "${t:0:13}"; else printf -v "$1" '%s' "$(date +%s%3N)"; fi
}
note() { printf 'gpuq: %s\n' "$*" >>"$JOB_DIR/stderr.log"; }

# Everything status.json records, as the supervisor starts (after the subreaper re-exec).
init_state() {
  JOB_DIR=$PWD
  SUP_PID=$$
  BOOT_ID=; read -r BOOT_ID 2>/dev/null </proc/sys/kernel/random/boot_id; BOOT_ID=${BOOT_ID:-unknown}
  now_ms_to STARTED_MS
  START_UPTIME=; read -r START_UPTIME _ 2>/dev/null </proc/uptime; START_UPTIME=${START_UPTIME:-0}
  # kernel_oom_evidence's gate; GPUQ_VMSTAT (tests only) names another counter file.
  VMSTAT=${GPUQ_VMSTAT:-/proc/vmstat}
  key_value OOM_KILLS_AT_START oom_kill "$VMSTAT"
  JOB_PID=""
  ENDED_MS=""
  EXIT_CODE=""
  SIGNAL=""
  TIMED_OUT=false
  CANCELLED=false
  LIMIT_FIRED=null
  KILLED_AFTER_GRACE=false
  CPU_SECONDS=""
  CG_VERSION=""
  CG_MEM=""
  CG_PIDS=""
  OOM_KILLS=""
  PIDS_REFUSED=""
  KERNEL_OOM="[]"
  MEMORY_PEAK=""
  LIMIT_FIRED_AT=""
  KERNEL_OOM_AT=""
  PIDS_PEAK=""
  CONTAINER_ID=""
  CONTAINER_OOM=""
  CONTAINER_EXIT="" CONTAINER_ENDED=""
  TREE_ARGS=()
  LEFTOVERS=0
  KILLERS=""
  TIMER_PID=""
  MONITOR_PID=""
  INTERRUPTED=""
  BOUNDARY=none
  JOB_UID=""
  JOB_GID=""
  JOB_USER=${USER:-$(id -un 2>/dev/null)}
  UID_LEASE_FD=""
  STATE=starting
  QUEUED_MS=""
  QUEUE_PID=""
  LEASED=""
  LEASE_LOCK_FDS=()
  LEASE_HOLD_FDS=()
}

# status.json, one `"key":value` line per field (templates/README.md lists them), written to a
# temp file and renamed over the old one, so a reader sees the previous or the next, never half.
# "state" comes first, on the opening line: the launcher and `gpuq nodes` match `"state":"running"`
# on the first line (or with grep), without a JSON parser.
status_field() { printf ',\n"%s":%s' "$1" "$2"; } # $2 is JSON text already
status_num() { status_field "$1" "${2:-null}"; }  # a number; empty (not known yet) is null
write_status() {
  local cg=null subreaper=false
  [ -n "$CG_VERSION" ] && cg="\"$CG_VERSION\""
  [ "$SUBREAPER" = 1 ] && subreaper=true
  {
    printf '{"state":"%s"' "$STATE"
    status_field version 1
    status_field supervisorPid "$SUP_PID"
    status_num pid "$JOB_PID"
    status_num pgid "$JOB_PID"
    status_field bootId "\"$BOOT_ID\""
    status_field startedAtMs "$STARTED_MS"
    status_num endedAtMs "$ENDED_MS"
    status_num exitCode "$EXIT_CODE"
    status_num signal "$SIGNAL"
    status_field timedOut "$TIMED_OUT"
    status_field cancelled "$CANCELLED"
    status_field limitFired "$LIMIT_FIRED"
    status_field killedAfterGrace "$KILLED_AFTER_GRACE"
    status_num cpuSeconds "$CPU_SECONDS"
    status_field cgroup "$cg"
    status_num oomKills "$OOM_KILLS"
    status_num pidsRefused "$PIDS_REFUSED"
    status_field kernelOom "$KERNEL_OOM"
    status_num memoryPeakBytes "$MEMORY_PEAK"
    status_field subreaper "$subreaper"
    status_num leftovers "$LEFTOVERS"
    status_field boundary "\"$BOUNDARY\""
    status_num jobUid "$JOB_UID"
    status_num limitFiredAtMs "$LIMIT_FIRED_AT"
    status_num kernelOomAtMs "$KERNEL_OOM_AT"
    status_num pidsPeak "$PIDS_PEAK"
    status_field gpus "[$LEASED]"
    status_num queuedAtMs "$QUEUED_MS"
    docker_mode && container_status_fields
    printf '\n}\n'
  } >status.json.tmp && mv -f status.json.tmp status.json
}

# --- cgroups: a memory limit without swap and a pids limit for the job alone, where we may make them.
# This process's cgroup path for v1 controller $1 ("" for v2's "0::" line) into CG_OWN.
# Builtins only: the supervisor starts faster without a fork per file it reads.
own_cgroup() {
  local line ctrls
  CG_OWN=
  while IFS= read -r line; do
    line=${line#*:} ctrls=${line%%:*}
    case ",$ctrls," in ",$1,"|*",$1,"*) CG_OWN=${line#*:}; return 0 ;; esac
  done </proc/self/cgroup
}
make_cgroup_v1() { # $1 controller -> prints the new cgroup's path, or nothing
  local root=$CG_ROOT/$1 own dir
  [ -d "$root" ] && [ -w "$root" ] || return 0
  own_cgroup "$1"; own=$CG_OWN
  for dir in "$root${own%/}/gpuq-$JOB_ID" "$root/gpuq/$JOB_ID"; do
    if mkdir -p "$dir" 2>/dev/null && [ -w "$dir/cgroup.procs" ]; then printf '%s' "$dir"; return 0; fi
  done
}
setup_cgroups() {
  [ "$USE_CGROUPS" = 1 ] || return 0
  if [ -f "$CG_ROOT/cgroup.controllers" ]; then
    # cgroup v2: a leaf under $CG_ROOT/gpuq (which holds no process itself).
    local base=$CG_ROOT/gpuq
    grep -qw memory "$CG_ROOT/cgroup.controllers" || return 0
    mkdir -p "$base" 2>/dev/null || return 0
    # One controller a write: a write naming an unavailable one would enable neither.
    # (Appending is the same as writing to a cgroup file.)
    local c
    for c in memory pids; do
      echo "+$c" >>"$CG_ROOT/cgroup.subtree_control" 2>/dev/null
      echo "+$c" >>"$base/cgroup.subtree_control" 2>/dev/null
    done
    grep -qw memory "$base/cgroup.subtree_control" 2>/dev/null || return 0
    mkdir -p "$base/$JOB_ID" 2>/dev/null || return 0
    CG_VERSION=v2; CG_MEM="$base/$JOB_ID"; CG_PIDS="$base/$JOB_ID"
    if [ "$MEMORY_BYTES" != 0 ]; then
      echo "$MEMORY_BYTES" >"$CG_MEM/memory.max" && echo 0 >"$CG_MEM/memory.swap.max" 2>/dev/null
    fi
    if [ "$PIDS_MAX" != 0 ]; then
      [ -f "$CG_PIDS/pids.max" ] && echo "$PIDS_MAX" >"$CG_PIDS/pids.max" || CG_PIDS=""
    fi
    return 0
  fi
  CG_MEM=$(make_cgroup_v1 memory)
  CG_PIDS=$(make_cgroup_v1 pids)
  [ -n "$CG_MEM$CG_PIDS" ] && CG_VERSION=v1
  if [ -n "$CG_MEM" ] && [ "$MEMORY_BYTES" != 0 ]; then
    echo "$MEMORY_BYTES" >"$CG_MEM/memory.limit_in_bytes" || { rmdir "$CG_MEM"; CG_MEM=""; }
    if [ -n "$CG_MEM" ]; then
      [ -f "$CG_MEM/memory.memsw.limit_in_bytes" ] && echo "$MEMORY_BYTES" >"$CG_MEM/memory.memsw.limit_in_bytes" 2>/dev/null
      echo 0 >"$CG_MEM/memory.swappiness" 2>/dev/null
    fi
  fi
  if [ -n "$CG_PIDS" ] && [ "$PIDS_MAX" != 0 ]; then
    echo "$PIDS_MAX" >"$CG_PIDS/pids.max" || { rmdir "$CG_PIDS"; CG_PIDS=""; }
  fi
  [ -n "$CG_MEM$CG_PIDS" ] || CG_VERSION=""
  return 0
}
# The number after KEY on its `KEY N` line of a cgroup file, into the variable named $1 (empty if
# none); builtins only, as `sed -n 's/^KEY \([0-9]*\)$/\1/p'` did with a fork.
key_value() {
  local k v
  printf -v "$1" '%s' ""
  while read -r k v; do [ "$k" = "$2" ] && [[ "$v" =~ ^[0-9]*$ ]] && printf -v "$1" '%s' "$v"; done 2>/dev/null <"$3"
  return 0
}
cgroup_evidence() {
  local n
  if [ "$CG_VERSION" = v2 ]; then
    key_value n oom_kill "$CG_MEM/memory.events"; OOM_KILLS=${n:-0}
    MEMORY_PEAK=; read -r MEMORY_PEAK 2>/dev/null <"$CG_MEM/memory.peak"
    if [ -n "$CG_PIDS" ]; then
      key_value n max "$CG_PIDS/pids.events"; PIDS_REFUSED=${n:-0}
    fi
    pids_peak
  elif [ "$CG_VERSION" = v1 ]; then
    if [ -n "$CG_MEM" ]; then
      key_value n oom_kill "$CG_MEM/memory.oom_control"
      if [ -z "$n" ]; then # old kernels: no oom_kill counter; a failcnt with a SIGKILL is the evidence
        n=; read -r n 2>/dev/null <"$CG_MEM/memory.failcnt"; [ "${n:-0}" -gt 0 ] && [ "$EXIT_CODE" = 137 ] && n=1 || n=0
      fi
      OOM_KILLS=${n:-0}
      MEMORY_PEAK=; read -r MEMORY_PEAK 2>/dev/null <"$CG_MEM/memory.max_usage_in_bytes"
    fi
    if [ -n "$CG_PIDS" ]; then
      key_value n max "$CG_PIDS/pids.events"; PIDS_REFUSED=${n:-0}
    fi
    pids_peak
  fi
}
# The pids cgroup's high-water mark of tasks (processes and threads), where the kernel keeps one.
pids_peak() {
  local n=""
  [ -n "$CG_PIDS" ] && read -r n 2>/dev/null <"$CG_PIDS/pids.peak"
  [[ "$n" =~ ^[0-9]+$ ]] && PIDS_PEAK=$n
  return 0
}
remove_cgroups() {
  local d
  for d in "$CG_MEM" "$CG_PIDS"; do [ -n "$d" ] && [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  return 0
}

# The kernel's OOM lines about this job, where the kernel log is readable (root, or dmesg_restrict=0):
# those naming its cgroup, its main pid or any pid the monitor saw in its tree (pids.seen).
kernel_oom_evidence() {
  local lines pids n
  # The kernel counts every OOM kill on the machine (/proc/vmstat oom_kill, Linux 4.13+): when the
  # count has not moved since the job started, no log line can be about it, and the scan (eight
  # processes) is skipped. Without the counter the log is always read.
  key_value n oom_kill "$VMSTAT"
  [ -n "$n" ] && [ -n "$OOM_KILLS_AT_START" ] && [ "$n" = "$OOM_KILLS_AT_START" ] && return 0
  pids=$( { echo "$JOB_PID"; tail -n 2000 pids.seen 2>/dev/null; } | grep -x '[0-9]\{1,10\}' | sort -u | paste -sd'|' -)
  lines=$(dmesg 2>/dev/null | awk -v s="$START_UPTIME" '{ t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); if (t + 0 >= s - 1) print }' |
    grep -E "oom-kill|Out of memory|Killed process" | grep -E "gpuq-$JOB_ID|gpuq/$JOB_ID${CONTAINER_ID:+|$CONTAINER_ID}|(pid=|process )($pids)[ ,]" | tail -n 5 | tr -d '\000-\011\013-\037\\"')
  [ -z "$lines" ] && return 0
  KERNEL_OOM=$(printf '%s\n' "$lines" | sed 's/.*/"&"/' | paste -sd, -)
  KERNEL_OOM="[$KERNEL_OOM]"
  # When the first of them was logged: its [uptime] stamp, converted to the epoch by the start's.
  KERNEL_OOM_AT=$(printf '%s\n' "$lines" | awk -v s="$START_UPTIME" -v ms="$STARTED_MS" \
    'NR == 1 { t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); if (t ~ /^[0-9]+(\.[0-9]+)?$/) printf "%.0f", ms + (t - s) * 1000 }')
  [[ "$KERNEL_OOM_AT" =~ ^[0-9]{1,15}$ ]] || KERNEL_OOM_AT=""
}

# SIGTERM to the job's process group and to every other process of its tree (processes that
# left the group with setsid are found as the final sweep finds them).
# One signal each: the tree first (the group is part of it), the group alone without python.
term_tree() {
  docker_mode && { stop_container TERM; return 0; }
  if [ -n "$PYTHON_SYS" ] && [ -f "$MONITOR" ] && [ ${#TREE_ARGS[@]} -gt 0 ] &&
    "$PYTHON_SYS" "$MONITOR" sweep --signal TERM "${TREE_ARGS[@]}" >/dev/null 2>>"$JOB_DIR/monitor.log"; then
    return 0
  fi
  kill -TERM -- "-$JOB_PID" 2>/dev/null
}

# --- SIGTERM to the whole tree, then SIGKILL to the group after the grace period (in the
# background); the final sweep kills whatever else is left once the main process is gone.
escalate() {
  (
    close_fds "${LEASE_LOCK_FDS[@]}" "${LEASE_HOLD_FDS[@]}"
    term_tree
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$GRACE_S" & sp=$!; wait "$sp"
    if kill -0 -- "-$JOB_PID" 2>/dev/null; then : >"$JOB_DIR/killed-after-grace"; kill_job_group; fi
  ) 9>&- &
  KILLERS="${KILLERS:-} $!"
}

on_cancel() {
  INTERRUPTED=1
  [ "$CANCELLED" = true ] && return 0
  CANCELLED=true
  [ -n "$QUEUE_PID" ] && kill -TERM "$QUEUE_PID" 2>/dev/null
  [ -n "${GRADE_PID:-}" ] && kill -TERM "$GRADE_PID" 2>/dev/null
  [ -n "$JOB_PID" ] && escalate
}
# SIGTERM/SIGHUP/SIGINT to the supervisor (an admin, a shutdown) end the job the same way,
# without calling it a cancel: the job then ends with 143 "from outside".
on_term() {
  INTERRUPTED=1
  [ -n "$QUEUE_PID" ] && [ -z "$JOB_PID" ] && STOP_QUEUED=1 && kill -TERM "$QUEUE_PID" 2>/dev/null
  [ -n "${GRADE_PID:-}" ] && kill -TERM "$GRADE_PID" 2>/dev/null
  [ -n "$JOB_PID" ] && [ -z "${TERMINATING:-}" ] && TERMINATING=1 && escalate
}

# The job's folder as the supervisor starts: empty logs (work/ and tmp/ come with the boundary).
prepare_folder() {
  : >stdout.log
  : >stderr.log
}

# --- the trust boundary: the program must neither write the supervisor's files nor signal it.
# As root: the program runs as an unprivileged uid (RUN_AS, else one leased per job from
# UID_BASE) in a mount namespace; the job folder stays root's (0700, control files 0600) and
# only work/ and tmp/ are the job's. Not root: the program runs in new user, mount and pid
# namespaces, its capabilities dropped, the supervisor out of its view. Both: the job folder is
# covered by a read-only tmpfs holding only work/ and tmp/ (isolate_mounts). Neither:
# BOUNDARY=none, recorded in status.json.
choose_boundary() {
  mkdir -p tmp work
  BOUNDARY=none
  docker_mode && { BOUNDARY=container; return 0; }
  if [ "$BOUNDARY_MODE" != none ] && command -v setpriv >/dev/null 2>&1; then
    if [ "$EUID" = 0 ]; then
      if lease_uid; then
        chown -R -- "$JOB_UID:$JOB_GID" work tmp && BOUNDARY=uid
      fi
    elif command -v unshare >/dev/null 2>&1 &&
      unshare --user --map-root-user --mount --pid --fork --mount-proc true </dev/null >/dev/null 2>&1; then
      BOUNDARY=userns
    fi
  fi
  if [ "$BOUNDARY" = none ] && [ "$REQUIRE_BOUNDARY" = 1 ]; then
    echo "gpuq: this node cannot run the job behind a trust boundary (root with setpriv, or unprivileged user namespaces); the competition requires one" >&2
    : >boundary.refused
    exit 3
  fi
  return 0
}

# A uid for the program: the configured account, or the first free lease of the high range.
lease_uid() {
  local n fd
  if [ -n "$RUN_AS" ]; then
    JOB_UID=$(id -u -- "$RUN_AS" 2>/dev/null) && JOB_GID=$(id -g -- "$RUN_AS" 2>/dev/null) || {
      note "runAs: no user $RUN_AS on this node; the job runs without a trust boundary"
      JOB_UID="" JOB_GID=""
      return 1
    }
    [ "$JOB_UID" != 0 ] || { note "runAs: $RUN_AS is root; the job runs without a trust boundary"; JOB_UID="" JOB_GID=""; return 1; }
    JOB_USER=$RUN_AS
    return 0
  fi
  (umask 077 && mkdir -p -- "$UID_LEASES") 2>/dev/null
  [ -d "$UID_LEASES" ] && [ -O "$UID_LEASES" ] || { note "cannot make $UID_LEASES; the job runs without a trust boundary"; return 1; }
  # From a random start, so that concurrent starts seldom try the same leases.
  local i start=$((RANDOM % 1000))
  for ((i = 0; i < 1000; i++)); do
    n=$(((start + i) % 1000))
    exec {fd}>>"$UID_LEASES/$n" || continue
    if flock -xn "$fd"; then
      UID_LEASE_FD=$fd JOB_UID=$((UID_BASE + n)) JOB_GID=$((UID_BASE + n)) JOB_USER=gpuq-$n
      return 0
    fi
    exec {fd}>&-
  done
  note "no free uid lease under $UID_LEASES; the job runs without a trust boundary"
  return 1
}

# The first ancestor of the job folder another uid cannot search (root mode), else nothing.
# One stat for all of them (a stat each cost a fork and an exec per level); an ancestor stat
# cannot read ends the search there, as before.
unsearchable_ancestor() {
  local a="" part i rest=${JOB_DIR#/}
  local -a parts ancestors=() modes=()
  IFS=/ read -ra parts <<<"${rest%/*}"
  for part in "${parts[@]}"; do
    [ -n "$part" ] || continue
    a="$a/$part"
    ancestors+=("$a")
  done
  [ ${#ancestors[@]} -gt 0 ] || return 0
  mapfile -t modes < <(stat -L -c %a -- "${ancestors[@]}" 2>/dev/null)
  for i in "${!ancestors[@]}"; do
    [[ "${modes[$i]:-}" =~ ^[0-7]{1,5}$ ]] || return 0
    if (((8#${modes[$i]} & 1) == 0)); then printf '%s' "${ancestors[$i]}"; return 0; fi
  done
}

# The folders to cover with an empty tmpfs in the program's mount namespace: outermost first,
# none inside another.
hidden_dirs() {
  local d h seen
  HIDE=()
  for d in "$@"; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    seen=""
    for h in "${HIDE[@]}"; do case $d/ in "$h"/*) seen=1 ;; esac; done
    [ -z "$seen" ] && HIDE+=("$d")
  done
}

# In the program's new mount namespace (as root there): hide HIDE, then cover the job folder with
# an empty read-only tmpfs that holds only work/ and tmp/, bound from the real folder: the
# supervisor's files are out of the program's view, and the real folder stays 0700.
isolate_mounts() {
  local h
  umask 022
  exec 7<"$JOB_DIR" || return 1
  # The competition's data, read-only (a bind mount of itself, remounted ro) before the hiding
  # (the answers may lie inside it).
  local data
  data=$(node_path "$DATA_DIR")
  if [ -n "$data" ] && [ -d "$data" ]; then
    mount --no-canonicalize --bind -- "$data" "$data" && mount -o remount,bind,ro -- "$data" || return 1
  fi
  for h in "${HIDE[@]}"; do
    mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev gpuq-hidden "$h" || return 1
  done
  mkdir -p -- "$JOB_DIR" &&
    mount -t tmpfs -o mode=0755,size=64k,nosuid,nodev gpuq-job "$JOB_DIR" &&
    mkdir -- "$JOB_DIR/work" "$JOB_DIR/tmp" &&
    mount --no-canonicalize --bind /proc/self/fd/7/work "$JOB_DIR/work" &&
    mount --no-canonicalize --bind /proc/self/fd/7/tmp "$JOB_DIR/tmp" &&
    mount -o remount,bind,ro "$JOB_DIR" || return 1
  exec 7<&-
}

# The job's environment, clean: nothing of the supervisor's or the submitter's own. Order:
# the base and the thread pools at the job's share of the cores, then --env (which may override
# them), then gpuq's own variables, which nobody overrides.
job_env() {
  local path=$PATH lang=${LC_ALL:-${LANG:-C.UTF-8}}
  [ "$BOUNDARY" = uid ] && path=$SAFE_PATH
  JOB_VARS=(PATH="$path" HOME="$JOB_DIR/work" LANG="$lang" LC_ALL="$lang" USER="$JOB_USER" LOGNAME="$JOB_USER")
  JOB_VARS+=(OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" NUMEXPR_NUM_THREADS="$THREADS")
  # No __pycache__ in work/ (`gpuq get` would bring it back as the job's output); --env may undo it.
  JOB_VARS+=(PYTHONDONTWRITEBYTECODE=1)
  JOB_VARS+=("${JOB_ENV[@]}")
  JOB_VARS+=(GPUQ_JOB_ID="$JOB_ID" PYTHONUNBUFFERED=1 TMPDIR="$JOB_DIR/tmp")
  [ -n "$DATA_DIR" ] && JOB_VARS+=(GPUQ_DATA="$(node_path "$DATA_DIR")")
  [ "$CUDA_DEVICES" != - ] && JOB_VARS+=(CUDA_VISIBLE_DEVICES="$CUDA_DEVICES" CUDA_DEVICE_ORDER=PCI_BUS_ID)
  return 0
}

# rlimits, applied last before exec: nothing forks after them (under `ulimit -u` a fork could fail).
apply_limits() {
  apply_limit() { # $1 flag, $2 value, $3 option name
    ulimit -S "$1" "$2" 2>/dev/null && ulimit -H "$1" "$2" 2>/dev/null && return 0
    local hard; hard=$(ulimit -H "$1")
    note "the node allows at most $hard for $3 (asked for $2); using $hard"
    ulimit -S "$1" "$hard"
  }
  ulimit -c 0
  [ "$FILES_MAX" != 0 ] && apply_limit -n "$FILES_MAX" --files
  [ "$FILE_SIZE_BYTES" != 0 ] && apply_limit -f "$(((FILE_SIZE_BYTES + 1023) / 1024))" --file-size
  [ "$CPU_TIME_S" != 0 ] && apply_limit -t "$CPU_TIME_S" --cpu-time
  if [ "$PIDS_MAX" != 0 ] && [ -z "$CG_PIDS" ]; then
    [ "$EUID" = 0 ] && [ "$BOUNDARY" = none ] && note "--pids is not enforced: no pids cgroup could be made and root ignores ulimit -u"
    apply_limit -u "$PIDS_MAX" --pids
  fi
  return 0
}

# The program itself, in work/, with its clean environment, as its uid or without capabilities.
exec_program() {
  exec 3>&-
  apply_limits
  case $BOUNDARY in
    uid) exec env -i -- "${JOB_VARS[@]}" setpriv --reuid="$JOB_UID" --regid="$JOB_GID" --clear-groups --no-new-privs \
      --inh-caps=-all --bounding-set=-all -- "${COMMAND[@]}" ;;
    userns) exec env -i -- "${JOB_VARS[@]}" setpriv --no-new-privs --inh-caps=-all --bounding-set=-all -- "${COMMAND[@]}" ;;
    *) exec env -i -- "${JOB_VARS[@]}" "${COMMAND[@]}" ;;
  esac
}

# `run.sh --enter BOUNDARY JOB_DIR UID GID USER THREADS CG_PIDS HIDE...`: the program's side of the
# namespaces, as their root. uid: mounts, then exec. userns: pid 1 of the new pid namespace runs
# the program as its child, passes signals on, and when it ends counts (into fd 3) and kills what
# is left of the namespace, then exits with the program's status.
enter_job() {
  BOUNDARY=$1 JOB_DIR=$2 JOB_UID=$3 JOB_GID=$4 JOB_USER=$5 THREADS=$6 CG_PIDS=$7
  shift 7
  note() { printf 'gpuq: %s\n' "$*" >&2; } # stderr is stderr.log; the folder is read-only here
  CUDA_DEVICES=${GPUQ_CUDA_DEVICES:-$CUDA_DEVICES}
  unset GPUQ_CUDA_DEVICES
  hidden_dirs "$@"
  isolate_mounts || { note "could not set up the job's mount namespace"; exit 126; }
  cd -- "$JOB_DIR/work" || exit 126
  job_env
  [ "$BOUNDARY" = userns ] || exec_program
  local p rc r2 n=0 q
  (exec 3>&- && exec_program) &
  p=$!
  trap 'INTERRUPTED=1; kill -TERM "$p" 2>/dev/null' TERM
  trap 'INTERRUPTED=1; kill -HUP "$p" 2>/dev/null' HUP
  trap 'INTERRUPTED=1; kill -INT "$p" 2>/dev/null' INT
  while :; do
    INTERRUPTED=""
    wait "$p" 2>/dev/null
    rc=$?
    if [ -n "$INTERRUPTED" ] && [ "$rc" -gt 128 ]; then
      kill -0 "$p" 2>/dev/null && continue
      wait "$p" 2>/dev/null; r2=$?
      [ "$r2" != 127 ] && rc=$r2
    fi
    break
  done
  local st
  for q in /proc/[0-9]*; do
    [ "${q#/proc/}" != 1 ] && IFS= read -r st 2>/dev/null <"$q/stat" || continue
    st=${st##*) }
    [ "${st%% *}" != Z ] && n=$((n + 1))
  done
  [ "$n" -gt 0 ] && kill -KILL -1 2>/dev/null
  printf '%s\n' "$n" >&3
  exit "$rc"
}

# Cores this supervisor may use: its CPU affinity (nproc), capped by a CPU quota of its own
# cgroup (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us) where one is set.
# The CPUs this process may run on into CPU_COUNT, as nproc counts them (its affinity:
# Cpus_allowed_list in /proc/self/status), capped by a CPU quota on its cgroup. Builtins only:
# `$(nproc)` inside a `$(...)` were two forks of the supervisor before every job.
count_cpus() {
  local n=0 k v r q p path
  local -a ranges=()
  while IFS=$' \t:' read -r k v; do [ "$k" = Cpus_allowed_list ] && break; v=; done 2>/dev/null </proc/self/status
  IFS=, read -ra ranges <<<"$v"
  for r in "${ranges[@]}"; do
    if [[ "$r" =~ ^([0-9]{1,5})-([0-9]{1,5})$ ]]; then n=$((n + 10#${BASH_REMATCH[2]} - 10#${BASH_REMATCH[1]} + 1))
    elif [[ "$r" =~ ^[0-9]{1,5}$ ]]; then n=$((n + 1)); fi
  done
  [ "$n" -ge 1 ] || n=$(nproc 2>/dev/null || echo 1)
  own_cgroup ""; path=$CG_OWN
  if [ -n "$path" ] && [ -r "$CG_ROOT${path%/}/cpu.max" ] && read -r q p <"$CG_ROOT${path%/}/cpu.max"; then :
  else
    own_cgroup cpu; path=$CG_OWN
    read -r q 2>/dev/null <"$CG_ROOT/cpu${path%/}/cpu.cfs_quota_us" || q=
    read -r p 2>/dev/null <"$CG_ROOT/cpu${path%/}/cpu.cfs_period_us" || p=
  fi
  if [[ "$q" =~ ^[0-9]+$ ]] && [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -gt 0 ]; then
    q=$(((q + p - 1) / p))
    [ "$q" -ge 1 ] && [ "$q" -lt "$n" ] && n=$q
  fi
  CPU_COUNT=$n
}

# The thread pools' default: the job's share of the cores, at least 1.
count_threads() {
  count_cpus
  THREADS=$((CPU_COUNT * SHARE_NUM / SHARE_DEN))
  [ "$THREADS" -ge 1 ] || THREADS=1
}

start_job() {
  docker_mode && { start_container; return 0; }
  local hide=() enter=()
  if [ "$BOUNDARY" = userns ]; then
    hide=("${HIDE_DIRS[@]}" "${JOB_DIR%/*}")
    enter=(unshare --user --map-root-user --mount --pid --fork --kill-child --mount-proc)
  elif [ "$BOUNDARY" = uid ]; then
    hide=("$(unsearchable_ancestor)")
    enter=(unshare --mount)
  fi
  # The competition's answers are the grader's alone: covered in the program's mount namespace.
  [ ${#enter[@]} -gt 0 ] && [ -n "$ANSWERS_DIR" ] && hide+=("$(node_path "$ANSWERS_DIR")")
  (
    [ -n "$CG_MEM" ] && echo "$BASHPID" >"$CG_MEM/cgroup.procs"
    [ -n "$CG_PIDS" ] && [ "$CG_PIDS" != "$CG_MEM" ] && echo "$BASHPID" >"$CG_PIDS/cgroup.procs"
    [ -n "$UID_LEASE_FD" ] && exec {UID_LEASE_FD}>&-
    # The program keeps the GPU leases' .hold locks (a program orphaned by a killed supervisor
    # keeps its GPUs), never the supervisor's own .lock ones.
    close_fds "${LEASE_LOCK_FDS[@]}"
    cd -- "$JOB_DIR/work" || exit 126
    if [ ${#enter[@]} -gt 0 ]; then
      # The program's side runs this script again inside the namespaces (enter_job).
      GPUQ_CUDA_DEVICES=$CUDA_DEVICES exec setsid "${enter[@]}" -- bash "$JOB_DIR/run.sh" --enter "$BOUNDARY" "$JOB_DIR" "$JOB_UID" "$JOB_GID" \
        "$JOB_USER" "$THREADS" "$CG_PIDS" "${hide[@]}"
    fi
    job_env
    COMMAND=(setsid "${COMMAND[@]}")
    exec_program
  ) </dev/null >>stdout.log 2>>stderr.log 9>&- 3>ns.leftovers &
  JOB_PID=$!
}
# Who the job is, for monitor.py (signal_tree, sweep): its main pid, marker, cgroups, subreaper.
describe_tree() {
  TREE_ARGS=(--job-id "$JOB_ID" --pid "$JOB_PID")
  [ "$SUBREAPER" = 1 ] && TREE_ARGS+=(--supervisor "$SUP_PID")
  [ -n "$CG_MEM" ] && TREE_ARGS+=(--cgroup-memory "$CG_MEM")
  [ -n "$CG_PIDS" ] && TREE_ARGS+=(--cgroup-pids "$CG_PIDS")
  return 0
}

# The wall-clock timer: SIGTERM at the limit, SIGKILL after the grace period.
# It acts only while the supervisor lives: orphaned by a killed supervisor, it would signal pids
# that may belong to someone else by then. It waits on job.lock, which the supervisor alone
# holds (fd 9): the wait ends at the limit, or at once when the supervisor is gone (killed, it
# leaves no timer behind). Where that wait cannot run, it sleeps and checks every minute.
start_timer() {
  (
    close_fds "${LEASE_LOCK_FDS[@]}" "${LEASE_HOLD_FDS[@]}"
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    # orphaned (the supervisor died), this subshell's parent is no longer the supervisor
    supervisor_alive() { local _p _c _s pp _r; read -r _p _c _s pp _r <"/proc/$BASHPID/stat" && [ "$pp" = "$SUP_PID" ]; }
    flock -w "$TIMEOUT_S" -s "$JOB_DIR/job.lock" true 2>/dev/null & sp=$!; wait "$sp"; rc=$?
    # 1: the limit passed. 0: the lock was free: the supervisor is gone, or it runs without the
    # lock (started by hand); then, as when flock failed, sleep.
    if [ "$rc" != 1 ]; then
      supervisor_alive || exit 0
      whole=${TIMEOUT_S%.*} frac=${TIMEOUT_S#"${TIMEOUT_S%.*}"}
      while [ "$whole" -gt 60 ]; do
        sleep 60 & sp=$!; wait "$sp"
        supervisor_alive || exit 0
        whole=$((whole - 60))
      done
      sleep "$whole$frac" & sp=$!; wait "$sp"
    fi
    supervisor_alive || exit 0
    now_ms >"$JOB_DIR/timeout.fired"
    term_tree
    sleep "$GRACE_S" & sp=$!; wait "$sp"
    supervisor_alive || exit 0
    if kill -0 -- "-$JOB_PID" 2>/dev/null; then : >"$JOB_DIR/killed-after-grace"; kill_job_group; fi
  ) 9>&- &
  TIMER_PID=$!
}

# The resource monitor (samples.jsonl, monitor.json, the memory watch), where python3 exists.
start_monitor() {
  if [ -n "$PYTHON_SYS" ] && [ -f "$MONITOR" ]; then
    local mon_args=(watch --dir "$JOB_DIR" --job-id "$JOB_ID" --pid "$JOB_PID")
    [ "$SUBREAPER" = 1 ] && mon_args+=(--supervisor "$SUP_PID")
    [ "$MEMORY_BYTES" != 0 ] && mon_args+=(--memory-bytes "$MEMORY_BYTES")
    [ -n "$CG_MEM" ] && mon_args+=(--cgroup-memory "$CG_MEM")
    [ -n "$CG_PIDS" ] && mon_args+=(--cgroup-pids "$CG_PIDS")
    [ "$CPU_TIME_S" != 0 ] && mon_args+=(--cpu-time-s "$CPU_TIME_S")
    docker_mode && container_monitor_args
    # A coprocess: its stdin and stdout are pipes to this supervisor, the final sweep's request
    # channel (monitor_sweep). Bash drops MONITOR_CO once it has ended: copies of the ends stay.
    coproc MONITOR_CO {
      close_fds "${LEASE_LOCK_FDS[@]}" "${LEASE_HOLD_FDS[@]}" &&
        exec "$PYTHON_SYS" "$MONITOR" "${mon_args[@]}" --requests 2>>monitor.log 9>&-
    }
    MONITOR_PID=${MONITOR_CO_PID:-} MONITOR_IN="" MONITOR_OUT=""
    [ -n "${MONITOR_CO[0]:-}" ] && [ -n "${MONITOR_CO[1]:-}" ] &&
      exec {MONITOR_IN}>&"${MONITOR_CO[1]}" {MONITOR_OUT}<&"${MONITOR_CO[0]}"
  else
    MONITOR_PID="" MONITOR_IN=""
    [ "$MEMORY_BYTES" != 0 ] && [ -z "$CG_MEM" ] && note "no python3 for the resource monitor and no memory cgroup: --memory is not enforced on this node"
  fi
  return 0
}

# A cancel requested before the traps could see it (the client writes the file, then signals us).
honour_early_cancel() {
  [ -e cancel.requested ] && on_cancel
  return 0
}

# Waits for the job; a trapped signal (cancel) interrupts `wait`, so wait again until it really
# ends. Then records its end, exit status, signal and CPU time.
wait_for_job() {
  local rc r2
  while :; do
    INTERRUPTED=""
    wait "$JOB_PID" 2>/dev/null
    rc=$?
    if [ -n "$INTERRUPTED" ] && [ "$rc" -gt 128 ]; then
      kill -0 "$JOB_PID" 2>/dev/null && continue
      wait "$JOB_PID" 2>/dev/null; r2=$?
      [ "$r2" != 127 ] && rc=$r2
    fi
    break
  done
  now_ms_to ENDED_MS
  EXIT_CODE=$rc
  [ "$rc" -gt 128 ] && SIGNAL=$((rc - 128))
  # CPU time of the job and its reaped children (second line of `times`: children's user and sys).
  # `times` must run in this shell, not in a pipeline's subshell, to see the job.
  times >.times 2>/dev/null
  cpu_seconds_of_times
}

# CPU_SECONDS from .times' second line ("0m1.250s 0m0.031s": the children's user and system
# time), to the hundredth, rounded; empty when it does not parse. Builtins only: sed and awk
# here were two of the forks between the program's end and its verdict.
cpu_seconds_of_times() {
  local _ u s f frac ms=0
  CPU_SECONDS=""
  { read -r _; read -r u s; } 2>/dev/null <.times || return 0
  for f in "$u" "$s"; do
    [[ "$f" =~ ^([0-9]{1,9})m([0-9]{1,2})[.,]([0-9]{1,6})s$ ]] || return 0
    frac=${BASH_REMATCH[3]}000 && frac=${frac:0:3}
    ms=$((ms + 10#${BASH_REMATCH[1]} * 60000 + 10#${BASH_REMATCH[2]} * 1000 + 10#$frac))
  done
  ms=$(((ms + 5) / 10))
  printf -v CPU_SECONDS '%d.%02d' $((ms / 100)) $((ms % 100))
}

# The running monitor does the final sweep (`monitor.py sweep`'s work, without a python start):
# asked on its stdin, it answers the count on its stdout and stops. False (LEFTOVERS untouched)
# when it gave no count: it had ended, it failed, or it took over 30 s.
monitor_sweep() {
  local n=""
  [ -n "${MONITOR_IN:-}" ] || return 1
  trap '' PIPE # an ended monitor: the write fails, without killing this shell
  printf 'sweep\n' 2>/dev/null >&"$MONITOR_IN" && read -r -t 30 n <&"$MONITOR_OUT"
  trap - PIPE
  exec {MONITOR_IN}>&- {MONITOR_OUT}<&-
  MONITOR_IN=""
  [[ "$n" =~ ^[0-9]{1,9}$ ]] && LEFTOVERS=$n
}

# Sweep: nothing the job started outlives it (process group, then the marker and cgroups).
# The timer and any grace-period killers stop first.
sweep() {
  local k p
  kill -TERM "$TIMER_PID" 2>/dev/null
  for k in ${KILLERS:-}; do kill -TERM "$k" 2>/dev/null; done
  kill -KILL -- "-$JOB_PID" 2>/dev/null
  docker_mode && end_container
  # A container Docker says has ended took every process in it along (its PID namespace went
  # with its init), and the client's group is killed above: nothing of the job is left on the
  # host to look for, so no /proc sweep (a python start on every Docker job's way out).
  if docker_mode && [ "$CONTAINER_ENDED" = 1 ]; then
    # The monitor's request channel is not needed: closed, so no later child inherits it.
    [ -n "${MONITOR_IN:-}" ] && exec {MONITOR_IN}>&- {MONITOR_OUT}<&- && MONITOR_IN=""
  elif monitor_sweep; then
    :
  elif [ -n "$PYTHON_SYS" ] && [ -f "$MONITOR" ]; then
    LEFTOVERS=$("$PYTHON_SYS" "$MONITOR" sweep "${TREE_ARGS[@]}" 2>>monitor.log 9>&- | tail -n1)
    [[ "$LEFTOVERS" =~ ^[0-9]+$ ]] || LEFTOVERS=0
  else
    for p in $(grep -lzx "GPUQ_JOB_ID=$JOB_ID" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
      [ "$p" != "$SUP_PID" ] && kill -KILL "$p" 2>/dev/null && LEFTOVERS=$((LEFTOVERS + 1))
    done
  fi
  # The processes the namespace's pid 1 found left and killed when the program ended (userns).
  read -r p 2>/dev/null <ns.leftovers && [[ "$p" =~ ^[0-9]+$ ]] && LEFTOVERS=$((LEFTOVERS + p))
  return 0
}

# Which limit fired (the timer's and the memory watch's marker files, the CPU time against its
# limit), and what the cgroups and the kernel log say.
gather_evidence() {
  [ -e timeout.fired ] && TIMED_OUT=true && LIMIT_FIRED='"timeout"'
  # The time the timer wrote into its marker (a regular file of one short line, or nothing).
  if [ -f timeout.fired ] && [ ! -L timeout.fired ]; then
    LIMIT_FIRED_AT=$(head -c 32 timeout.fired 2>/dev/null)
    [[ "$LIMIT_FIRED_AT" =~ ^[0-9]{1,15}$ ]] || LIMIT_FIRED_AT=""
  fi
  [ -e killed-after-grace ] && KILLED_AFTER_GRACE=true
  if [ -e memory.fired ] && [ "$TIMED_OUT" = false ]; then LIMIT_FIRED='"memory"'; fi
  if [ "$LIMIT_FIRED" = null ] && [ "$CPU_TIME_S" != 0 ] && { [ "$EXIT_CODE" = 137 ] || [ "$EXIT_CODE" = 152 ]; }; then
    awk -v used="$CPU_SECONDS" -v lim="$CPU_TIME_S" 'BEGIN { exit !(used + 1 >= lim) }' && LIMIT_FIRED='"cpu"'
  fi
  cgroup_evidence
  docker_mode && container_evidence
  kernel_oom_evidence
}

# The monitor writes its last sample and monitor.json when told to stop.
stop_monitor() {
  if [ -n "$MONITOR_PID" ]; then
    kill -TERM "$MONITOR_PID" 2>/dev/null
    wait "$MONITOR_PID" 2>/dev/null
  fi
  return 0
}

# --- GPU leases and the queue (templates/README.md, "GPU leases and the queue").
close_fds() { local f; for f in "$@"; do exec {f}>&-; done; return 0; }

# The lock folder every account shares: made 1777 (sticky) when missing; a folder that cannot be
# made or written refuses the job (lease.refused, exit 3): a job never runs without its lease.
prepare_lock_dir() {
  [ "$NEED_GPUS" -gt 0 ] || return 0
  [ -d "$LOCK_DIR" ] || mkdir -p -m 1777 -- "$LOCK_DIR" 2>/dev/null
  [ -d "$LOCK_DIR/queue" ] || mkdir -m 1777 -- "$LOCK_DIR/queue" 2>/dev/null
  if [ ! -d "$LOCK_DIR/queue" ] || [ ! -w "$LOCK_DIR" ] || [ ! -w "$LOCK_DIR/queue" ] || [ ! -x "$LOCK_DIR/queue" ]; then
    echo "gpuq: node $NODE_NAME: the GPU lock folder $LOCK_DIR cannot be created or is not writable by $(id -un 2>/dev/null); set nodes.$NODE_NAME.lockDir to a folder every gpuq account can write (mode 1777)" >&2
    : >lease.refused
    exit 3
  fi
  [ -n "$PYTHON_SYS" ] && [ -f "$QUEUE" ] && return 0
  echo "gpuq: node $NODE_NAME: GPU jobs need python3 on the node for the GPU queue" >&2
  : >lease.refused
  exit 3
}

# Opens a lease file of the lock folder into OPENED_FD: an existing one read-only (flock needs no
# more; O_CREAT on another account's file in a sticky folder is refused), a missing one created 0666.
open_lease_file() {
  OPENED_FD=""
  if [ -L "$1" ]; then echo "gpuq: node $NODE_NAME: $1 is a symbolic link; remove it" >&2; return 1; fi
  if [ -e "$1" ]; then exec {OPENED_FD}<"$1" && return 0; fi
  umask 000
  exec {OPENED_FD}<>"$1"
  local rc=$?
  umask 077
  [ "$rc" = 0 ] && return 0
  exec {OPENED_FD}<"$1"
}

# Waits in the node's queue (queue.py) until NEED_GPUS GPUs are leased to this job: their lock
# files stay open (and flocked) on LEASE_LOCK_FDS and LEASE_HOLD_FDS. While it waits, status.json
# says "queued" (queue.py sends SIGUSR2 the first time it has to wait); a cancel or SIGTERM ends
# the wait and the supervisor without starting the program.
acquire_gpus() {
  [ "$FROM_SLURM" = 1 ] && { slurm_gpus; return 0; }
  [ "$NEED_GPUS" -gt 0 ] || return 0
  local g fl fh args=() all_l=() all_h=() idx=() rc r2 out i
  for g in "${NODE_GPUS[@]}"; do
    open_lease_file "$LOCK_DIR/gpu-$g.lock" || { end_unstarted "cannot open the GPU lock file $LOCK_DIR/gpu-$g.lock"; }
    fl=$OPENED_FD
    open_lease_file "$LOCK_DIR/gpu-$g.hold" || { end_unstarted "cannot open the GPU lock file $LOCK_DIR/gpu-$g.hold"; }
    fh=$OPENED_FD
    all_l+=("$fl") all_h+=("$fh") idx+=("$g")
    args+=(--gpu "$g:$fl:$fh")
  done
  LEASE_LOCK_FDS=("${all_l[@]}") LEASE_HOLD_FDS=("${all_h[@]}")
  trap 'STATE=queued; now_ms_to QUEUED_MS; INTERRUPTED=1; write_status' USR2
  "$PYTHON_SYS" -I -S "$QUEUE" wait --lock-dir "$LOCK_DIR" --job-id "$JOB_ID" --need "$NEED_GPUS" \
    --priority "$PRIORITY" --timeout-s "${TIMEOUT_S%.*}" --submitter "$SUBMITTER" --out-dir "$JOB_DIR" \
    --foreign-mib "$FOREIGN_MIB" "${args[@]}" </dev/null >queue.out 2>>queue.log 9>&- &
  QUEUE_PID=$!
  while :; do
    INTERRUPTED=""
    wait "$QUEUE_PID" 2>/dev/null
    rc=$?
    if [ -n "$INTERRUPTED" ] && [ "$rc" -gt 128 ] && kill -0 "$QUEUE_PID" 2>/dev/null; then continue; fi
    if [ -n "$INTERRUPTED" ] && [ "$rc" -gt 128 ]; then wait "$QUEUE_PID" 2>/dev/null; r2=$?; [ "$r2" != 127 ] && rc=$r2; fi
    break
  done
  QUEUE_PID=""
  trap - USR2
  IFS= read -r out <queue.out 2>/dev/null
  [ -e cancel.requested ] && CANCELLED=true
  [ "$CANCELLED" = true ] && end_unstarted "cancelled while queued"
  [ -n "${STOP_QUEUED:-}" ] && end_unstarted "stopped by a signal while queued"
  if [ "$rc" != 0 ] || ! [[ "$out" =~ ^[0-9]+(,[0-9]+)*$ ]]; then
    end_unstarted "the GPU queue failed (exit $rc); see queue.log"
  fi
  # Keep the leased GPUs' descriptors, close the others'.
  LEASE_LOCK_FDS=() LEASE_HOLD_FDS=()
  for i in "${!idx[@]}"; do
    if [[ ",$out," == *",${idx[$i]},"* ]]; then
      LEASE_LOCK_FDS+=("${all_l[$i]}") LEASE_HOLD_FDS+=("${all_h[$i]}")
    else
      close_fds "${all_l[$i]}" "${all_h[$i]}"
    fi
  done
  LEASED=$out CUDA_DEVICES=$out
  # The job's own clock starts now: startedAtMs is when the program starts, not when it queued.
  now_ms_to STARTED_MS
  START_UPTIME=; read -r START_UPTIME _ 2>/dev/null </proc/uptime; START_UPTIME=${START_UPTIME:-0}
}

# A competition folder as the config names it: "~/" is the node account's home.
node_path() { case $1 in "~/"*) printf '%s' "$HOME/${1#"~/"}" ;; *) printf '%s' "$1" ;; esac; }

# The grading step (templates/grade.py), once the program exited 0 and the sweep is done: state
# "grading" while it runs, as the node account (never the program's uid), without job.lock (fd 9)
# and the GPU leases, which are let go before. A cancel or SIGTERM stops the grader (grade.py
# records it).
grade_submission() {
  GRADE_PID=""
  [ ${#GRADE[@]} -gt 0 ] || return 0
  # Without a boundary the program could have planted a grading: none counts but grade.py's.
  rm -rf -- gradings 2>/dev/null
  [ "$EXIT_CODE" = 0 ] && [ "$CANCELLED" = false ] && [ "$TIMED_OUT" = false ] || return 0
  [ -n "$PYTHON_SYS" ] && [ -f "$JOB_DIR/grade.py" ] || { note "no python3 or grade.py on this node: the job cannot be graded"; return 0; }
  STATE=grading
  write_status
  "$PYTHON_SYS" -I -S "$JOB_DIR/grade.py" --fresh "${GRADE[@]}" </dev/null >/dev/null 2>>grade.log 9>&- &
  GRADE_PID=$!
  while :; do
    INTERRUPTED=""
    wait "$GRADE_PID" 2>/dev/null
    [ -n "$INTERRUPTED" ] && kill -0 "$GRADE_PID" 2>/dev/null && continue
    break
  done
  GRADE_PID=""
}

# On a Slurm node the GPUs are the ones Slurm gave the job: SLURM_JOB_GPUS (the node's indices)
# recorded in status.json, CUDA_VISIBLE_DEVICES passed on as Slurm set it (none: no GPU).
slurm_gpus() {
  local g=${SLURM_JOB_GPUS:-${SLURM_STEP_GPUS:-}} c=${CUDA_VISIBLE_DEVICES:-}
  [[ "$g" =~ ^[0-9]{1,4}(,[0-9]{1,4}){0,63}$ ]] || g=""
  [[ "$c" =~ ^[0-9A-Za-z,-]{1,1000}$ ]] || c=$g
  LEASED=$g CUDA_DEVICES=$c
  return 0
}

# The supervisor's end when the program never started (cancelled or stopped while queued, or the
# queue failed): status.json "exited" without a pid, then exit.
end_unstarted() {
  note "$1"
  close_fds "${LEASE_LOCK_FDS[@]}" "${LEASE_HOLD_FDS[@]}"
  now_ms_to ENDED_MS
  STATE=exited
  write_status
  exit 0
}

# --- Docker isolation (ISOLATION=docker; templates/README.md, "Docker isolation"). The program
# runs in a container of its own, started by `docker run` in the foreground as the job's "main
# process" (its output streams into stdout.log/stderr.log); the supervisor stays outside and stops
# the container by name (`docker kill`), reads its exit and OOMKilled from `docker inspect`, its
# cgroup's counters from monitor.py (container.evidence), then removes it.
docker_mode() { [ "$ISOLATION" = docker ]; }

# Refuses the job before it is recorded as running (docker.refused, exit 3; the launcher shows
# these two lines): no docker command, a daemon that is down, a socket the account may not use,
# an image missing on the node.
docker_refused() {
  echo "gpuq: node $NODE_NAME: $1" >&2
  echo "gpuq: hint: $2" >&2
  : >docker.refused
  exit 3
}
check_docker() {
  docker_mode || return 0
  local out who
  command -v "${DOCKER[0]}" >/dev/null 2>&1 ||
    docker_refused "${DOCKER[0]} is not installed (or not on the PATH)" "install Docker there, or set nodes.$NODE_NAME.docker.command in the config"
  # Rootless Docker on cgroup v1 drops --memory and --pids-limit with only a warning: refused.
  # Asked alongside the image (the two round trips to the daemon overlap), and kept ten minutes
  # in the node's workdir (docker.info), so most jobs ask the daemon once.
  local cache="${JOB_DIR%/*/*}/docker.info" info_pid="" info=""
  if [ -z "$(find "$cache" -maxdepth 0 -mmin -10 2>/dev/null)" ]; then
    { "${DOCKER[@]}" info --format '{{.CgroupVersion}} {{json .SecurityOptions}}' >"$cache.$$" 2>/dev/null &&
      mv -f "$cache.$$" "$cache"; } 9>&- &
    info_pid=$!
  fi
  out=$("${DOCKER[@]}" image inspect --format '{{.Id}}' "$DOCKER_IMAGE" 2>&1 >/dev/null) && {
    [ -n "$info_pid" ] && wait "$info_pid"
    IFS= read -r info 2>/dev/null <"$cache"
    case $info in
      "1 "*name=rootless*) docker_refused "its Docker is rootless on cgroup v1, which ignores the memory and pids limits" \
        "use rootful Docker there (the docker group), or move the node to cgroup v2" ;;
    esac
    return 0
  }
  [ -n "$info_pid" ] && wait "$info_pid"
  who=$(id -un 2>/dev/null)
  out=$(printf '%s' "$out" | tr -d '\000-\011\013-\037' | tail -n 1 | cut -c1-300)
  case $out in
    *"ermission denied"*)
      docker_refused "the account $who may not use the Docker daemon's socket ($out)" \
        "add $who to the docker group there (usermod -aG docker $who), or set nodes.$NODE_NAME.docker.command" ;;
    *"Cannot connect to the Docker daemon"* | *"Is the docker daemon running"* | *"error during connect"* | *"connect: no such file"* | *"connection refused"*)
      docker_refused "the Docker daemon does not answer ($out)" \
        "start it there (systemctl start docker), or point nodes.$NODE_NAME.docker.command at a daemon that runs" ;;
    *"No such image"* | *"no such image"* | *"image not known"*)
      docker_refused "the image $DOCKER_IMAGE is not there" \
        "pull or load it on that node (docker pull $DOCKER_IMAGE), or submit with another --image" ;;
    *) docker_refused "docker cannot use the image $DOCKER_IMAGE ($out)" "run '${DOCKER[*]} image inspect $DOCKER_IMAGE' there to see why" ;;
  esac
}

# Starts the container: the options with the node's values filled in (the job's folder, this
# account's uid and gid, its share of the cores, the leased GPUs), then the image and command.
start_container() {
  local a args=() uid gid c cpus
  uid=$(id -u) gid=$(id -g)
  # Never root in the container: as root, the node's runAs or a leased uid (as the uid boundary).
  if [ "$uid" = 0 ]; then
    lease_uid || { JOB_UID=65534 JOB_GID=65534; note "the container runs as uid 65534"; }
    chown -R -- "$JOB_UID:$JOB_GID" work tmp
    uid=$JOB_UID gid=$JOB_GID
  fi
  count_cpus
  c=$((CPU_COUNT * SHARE_NUM * 100 / SHARE_DEN))
  [ "$c" -ge 1 ] || c=1
  printf -v cpus '%d.%02d' $((c / 100)) $((c % 100))
  for a in "${DOCKER_OPTS[@]}"; do
    a=${a//@GPUQ_WORK@/$JOB_DIR/work}
    a=${a//@GPUQ_HOME@/$HOME}
    a=${a//@GPUQ_UID@/$uid}
    a=${a//@GPUQ_GID@/$gid}
    a=${a//@GPUQ_CPUS@/$cpus}
    a=${a//@GPUQ_THREADS@/$THREADS}
    a=${a//@GPUQ_GPUS@/$CUDA_DEVICES}
    args+=("$a")
  done
  rm -f container.id
  printf '%s\n' "$CONTAINER" >container
  printf '%s\n' "${DOCKER[@]}" >container.cmd
  (
    close_fds "${LEASE_LOCK_FDS[@]}"
    [ -n "$UID_LEASE_FD" ] && exec {UID_LEASE_FD}>&-
    exec setsid "${DOCKER[@]}" run --cidfile "$JOB_DIR/container.id" "${args[@]}" -- "$DOCKER_IMAGE" "${COMMAND[@]}"
  ) </dev/null >>stdout.log 2>>stderr.log 9>&- 3>&- &
  JOB_PID=$!
}

# The monitor's options for the container (its cidfile, where cgroups are mounted, the GPUs).
container_monitor_args() {
  mon_args+=(--container-cidfile "$JOB_DIR/container.id" --cgroup-root "$CG_ROOT")
  [ "$CUDA_DEVICES" != - ] && [ -n "$CUDA_DEVICES" ] && mon_args+=(--gpus "$CUDA_DEVICES")
  return 0
}

# A signal to the container's init (which passes it to the program): TERM, or KILL.
stop_container() {
  "${DOCKER[@]}" kill --signal "$1" "$CONTAINER" >/dev/null 2>&1
  return 0
}
# SIGKILL after the grace period: the container under Docker, the job's process group otherwise.
# A container that was not running yet when asked (Docker still starting it on a loaded node)
# is asked again until its client, which lives as long as it does, has ended.
kill_job_group() {
  if docker_mode; then
    stop_container KILL
    while kill -0 -- "-$JOB_PID" 2>/dev/null; do
      sleep 0.5
      stop_container KILL
    done
    return 0
  fi
  kill -KILL -- "-$JOB_PID" 2>/dev/null
}

# The client has ended: the container's id, exit and OOMKilled; a container still running (its
# client lost the daemon) is killed and waited for first.
end_container() {
  local line i
  read -r CONTAINER_ID 2>/dev/null <container.id
  [[ "$CONTAINER_ID" =~ ^[0-9a-f]{64}$ ]] || CONTAINER_ID=""
  for i in 1 2; do
    line=$("${DOCKER[@]}" inspect --format '{{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}' "$CONTAINER" 2>/dev/null)
    case $line in
      "true "*) "${DOCKER[@]}" kill "$CONTAINER" >/dev/null 2>&1; "${DOCKER[@]}" wait "$CONTAINER" >/dev/null 2>&1 ;;
      *) break ;;
    esac
  done
  read -r CONTAINER_ENDED CONTAINER_EXIT CONTAINER_OOM <<<"$line"
  [ "$CONTAINER_ENDED" = false ] && CONTAINER_ENDED=1
  [[ "$CONTAINER_EXIT" =~ ^[0-9]{1,3}$ ]] || CONTAINER_EXIT=""
  case $CONTAINER_OOM in true | false) ;; *) CONTAINER_OOM="" ;; esac
  # Docker's evidence is read (its cgroup went with its end): the removal runs meanwhile, and
  # the supervisor waits for it before it lets go of the job (remove_container).
  RM_PID=""
  if [ "$KEEP_CONTAINER" != 1 ]; then
    "${DOCKER[@]}" rm -f "$CONTAINER" >/dev/null 2>&1 9>&- &
    RM_PID=$!
  fi
  return 0
}

# The container's evidence into status.json's fields: its exit, and its cgroup's counters as
# monitor.py last read them (the cgroup is gone with the container); OOMKilled counts as a kill.
container_evidence() {
  local k v
  stop_monitor
  # The container's exit, except for one that never started: the client's own 125-127 (Docker's
  # error, cannot run, not found) stand where the engine reads 0 for it (Podman does).
  if [ -n "$CONTAINER_EXIT" ] && ! { [ "$CONTAINER_EXIT" = 0 ] && [ "$EXIT_CODE" -ge 125 ] && [ "$EXIT_CODE" -le 127 ]; }; then
    EXIT_CODE=$CONTAINER_EXIT SIGNAL=""
    [ "$EXIT_CODE" -gt 128 ] && SIGNAL=$((EXIT_CODE - 128))
  fi
  CPU_SECONDS=""
  while read -r k v; do
    [[ "$v" =~ ^[0-9]{1,19}$ ]] || [[ "$v" =~ ^v[12]$ ]] || continue
    case $k in
      cgroup) CG_VERSION=$v ;;
      oom_kill) OOM_KILLS=$v ;;
      memory_peak) MEMORY_PEAK=$v ;;
      pids_refused) PIDS_REFUSED=$v ;;
      pids_peak) PIDS_PEAK=$v ;;
      cpu_usec) printf -v CPU_SECONDS '%d.%02d' $((v / 1000000)) $((v % 1000000 / 10000)) ;;
    esac
  done < <(head -c 4096 container.evidence 2>/dev/null)
  [ "$CONTAINER_OOM" = true ] && [ "${OOM_KILLS:-0}" = 0 ] && OOM_KILLS=1
  return 0
}
container_status_fields() {
  status_field container "\"$CONTAINER\""
  status_num containerExitCode "$CONTAINER_EXIT"
  status_num containerOomKilled "$CONTAINER_OOM"
}

# After the verdict's evidence is recorded: no container outlives its job (--keep-container keeps
# it). The removal end_container started is waited for; one that failed is tried again.
remove_container() {
  if [ "$KEEP_CONTAINER" = 1 ]; then
    note "the container $CONTAINER was kept (--keep-container); remove it with: ${DOCKER[*]} rm $CONTAINER"
    return 0
  fi
  [ -n "${RM_PID:-}" ] && wait "$RM_PID" && return 0
  "${DOCKER[@]}" rm -f "$CONTAINER" >/dev/null 2>&1
  return 0
}

main() {
  [ "${1:-}" = --enter ] && enter_job "${@:2}"
  find_python
  become_subreaper "$@" # may re-execute this script as a subreaper
  init_state
  trap on_cancel USR1
  trap on_term TERM HUP INT
  prepare_folder
  prepare_lock_dir
  choose_boundary
  check_docker
  write_status
  acquire_gpus
  setup_cgroups
  count_threads
  start_job
  STATE=running
  write_status
  describe_tree
  start_timer
  start_monitor
  honour_early_cancel
  wait_for_job
  sweep
  gather_evidence
  stop_monitor
  remove_cgroups
  close_fds "${LEASE_LOCK_FDS[@]}" "${LEASE_HOLD_FDS[@]}"
  grade_submission
  STATE=exited
  write_status
  docker_mode && remove_container
  exit 0
}

main "$@"
