#!/usr/bin/env python3
"""gpuq node-side monitor: resource sampler, memory watch and process sweep.

Self-contained (Python 3.7+, standard library only); the supervisor (templates/wrapper.sh)
uploads it into the job folder and runs it in two ways:

  monitor.py watch --dir JOBDIR --job-id ID --pid PID [--memory-bytes N]
                   [--cgroup-memory PATH] [--cgroup-pids PATH] [--watch-interval 0.1]
                   [--supervisor PID] [--cpu-time-s N]
                   [--container-cidfile FILE [--cgroup-root DIR] [--gpus 0,2]]
      Samples the job's process tree into JOBDIR/samples.jsonl (one JSON object a line),
      keeps the running peaks in JOBDIR/monitor.json (atomically replaced), and, when
      --memory-bytes is given without a memory cgroup, kills the tree once its RSS goes over
      the limit (JOBDIR/memory.fired is created first). Every pid it sees in the tree is
      appended once to JOBDIR/pids.seen (for matching kernel OOM lines). Samples every 0.1 s
      in the first second, every 0.25 s until 4 s, then every second; a sample scans all of
      /proc once a second in the first 4 s and every 5 s after, the samples between walk the known tree and the
      children of its processes and of the supervisor (cheap on a node with 1000s of
      processes; a child forked by a non-main thread waits for the next full scan).
      It also records when the memory cgroup's oom_kill counter first rises
      (monitor.json firstOomKillAtMs, checked every 0.25 s) and, with --cpu-time-s, the process
      that vanished at the per-process CPU-time limit (cpuLimitHit: processes past half the
      limit are re-read every 0.1 s). Stops on SIGTERM/SIGINT,
      or by itself 2 s after the job and every process of its tree are gone.
      With --container-cidfile (--isolation docker), the job's container: see ContainerCgroups.
      With --requests, stdin is the supervisor's request channel: a line `sweep` (sent once the
      job's main process has ended) makes the monitor do the sweep command's work itself, print
      the count on stdout (nothing when the sweep failed: the supervisor then runs `sweep`) and
      stop, which saves the node a python start a job. While that channel is open, it waits up
      to 30 s (not 2) for the request after the tree is gone.

  monitor.py sweep --job-id ID --pid PID [--cgroup-pids PATH] [--cgroup-memory PATH]
                   [--supervisor PID] [--signal TERM]
      SIGKILLs whatever is left of the job's tree, pass after pass (fork races), for up to
      ~2 s or until a pass finds nothing; prints the number of distinct processes killed.
      With --signal, sends that signal once to every process of the live tree instead (the
      timeout and a cancel warn escapees outside the process group too).

The job tree: processes whose session (or process group) is PID, processes whose environment
holds GPUQ_JOB_ID=ID exactly, the members of the given cgroups, and the descendants of the
supervisor (--supervisor; it is a child subreaper, so orphans that left the session and cleared
their environment are re-parented to it) outside the supervisor's own session (its helpers
live there: the timer, this monitor; the job runs in a session of its own from its start);
never this process, nor its ancestors, nor its own children (nvidia-smi runs without the marker).
A process whose main thread has exited (pthread_exit) reads Z in /proc/PID/stat while its other
threads run: it is a zombie only once no thread of it runs; until then it is live, and its memory,
environment and children are read through a live thread (/proc/PID/task/TID).
"""

import os
import select
import stat
import sys
import time

try:  # the C module: `signal` imports enum, which costs every monitor start a few ms
    import _signal as signal
except ImportError:  # pragma: no cover (CPython has had _signal since 3.5)
    import signal

# Every python start of a job costs the node CPU: what only some runs need (argparse, json's
# re, subprocess and threading for nvidia-smi) is imported where it is used, not here.

MARKER_VAR = "GPUQ_JOB_ID"
FIRST_CADENCE_S = 0.1
FIRST_PERIOD_S = 1.0
FAST_CADENCE_S = 0.25
FAST_PERIOD_S = 4.0
CADENCE_S = 1.0
FULL_SCAN_S = 5.0
PSS_INTERVAL_S = 0.5
SLOW_CADENCE_S = 5.0
MAX_SAMPLE_LINES = 20000
DEAD_CADENCE_S = 0.5
EXIT_AFTER_EMPTY_S = 2.0
MONITOR_MIN_REWRITE_S = 1.0
FOLDER_MIN_INTERVAL_S = 5.0
FOLDER_MAX_INTERVAL_S = 60.0
GPU_MIN_INTERVAL_S = 2.0
GPU_MAX_INTERVAL_S = 15.0
GPU_FAIL_INTERVAL_S = 10.0
GPU_TIMEOUT_S = 5.0
GPU_STALE_S = 30.0
SWEEP_DEADLINE_S = 2.0
SWEEP_PAUSE_S = 0.005
MIB = 1024 * 1024
ZOMBIE_STATES = ("Z", "X", "x")
OOM_CHECK_S = 0.25
CONTAINER_CHECK_S = 0.5
HOT_CPU_S = 0.1
MAX_UNSEEN_S = 0.5
TICK_SKEW = 0.15
CPU_NAME_MAX = 64
REQUEST_WAIT_S = 30.0
REQUEST_MAX_BYTES = 4096


# --------------------------------------------------------------------------- /proc access


class ProcStat(object):
    """The fields of /proc/PID/stat the monitor uses."""

    __slots__ = ("pid", "state", "ppid", "pgrp", "session", "cpu_ticks", "child_ticks",
                 "threads", "starttime", "rss_pages", "env_key")
    live_tid = None  # set on a LiveThreadStat

    def is_dead(self):
        """True for a zombie (ended, not yet reaped) or a dying task. A process whose main
        thread has exited (pthread_exit) shows Z while its other threads run: it is live, and
        live_tid names one of those threads (see read_stat)."""
        return self.state in ZOMBIE_STATES and self.live_tid is None

    def proc_dir(self):
        """The /proc folder for what belongs to the whole process (environ, fd, smaps_rollup):
        the main thread's is empty once it has exited, a live thread's still shows them."""
        if self.live_tid is not None:
            return "/proc/%d/task/%d" % (self.pid, self.live_tid)
        return "/proc/%d" % self.pid


class LiveThreadStat(ProcStat):
    """The stat of a process whose main thread has exited while `live_tid` runs on: the main
    thread's fields, with the RSS and environment bounds read from the live thread."""

    __slots__ = ("live_tid",)


def read_small(path, size=4096):
    """Reads up to `size` bytes of a (proc) file in one read; raises OSError."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def read_all(path):
    """Reads a whole (proc) file, however long; raises OSError."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def parse_stat(pid, data):
    """Parses the text of /proc/PID/stat (the command name may hold spaces and parens)."""
    end = data.rfind(b")")
    if end < 0:
        return None
    f = data[end + 2:].split()
    if len(f) < 22:
        return None
    st = ProcStat()
    st.pid = pid
    st.state = f[0].decode("ascii", "replace")
    st.ppid = int(f[1])
    st.pgrp = int(f[2])
    st.session = int(f[3])
    st.cpu_ticks = int(f[11]) + int(f[12])
    st.child_ticks = int(f[13]) + int(f[14])
    st.threads = int(f[17])
    st.starttime = int(f[19])
    st.rss_pages = max(0, int(f[21]))
    # env_start/env_end (fields 50, 51): they change on execve, and read 0 0 for kernel
    # threads and for processes whose memory we may not read (whose environ we cannot read).
    st.env_key = (int(f[47]), int(f[48])) if len(f) >= 49 else None
    return st


def read_stat(pid):
    """/proc/PID/stat parsed, or None when the process is gone or unreadable.

    A main thread that exited while other threads run leaves the process's stat in state Z
    with RSS 0 and no environment (the main thread has dropped the memory map); such a process
    is adopted as live from one of its live threads (adopt_live_thread)."""
    try:
        st = parse_stat(pid, read_small("/proc/%d/stat" % pid))
    except (OSError, ValueError):
        return None
    if st is not None and st.state in ZOMBIE_STATES and st.threads > 1:
        return adopt_live_thread(st)
    return st


def adopt_live_thread(st):
    """A Z process as live (a LiveThreadStat) when one of its threads (/proc/PID/task/TID/stat)
    is not a zombie, else `st` itself. The RSS and environment bounds are that thread's view of
    the process's memory (one memory map, shared by all threads: any live thread shows the whole
    process's RSS, so it is taken once, never summed)."""
    base = "/proc/%d/task" % st.pid
    try:
        tids = [int(n) for n in os.listdir(base) if n.isdigit()]
    except OSError:
        return st
    for tid in tids:
        if tid == st.pid:
            continue
        try:
            th = parse_stat(tid, read_small("%s/%d/stat" % (base, tid)))
        except (OSError, ValueError):
            continue
        if th is None or th.state in ZOMBIE_STATES:
            continue
        led = LiveThreadStat()
        for name in ProcStat.__slots__:
            setattr(led, name, getattr(st, name))
        led.live_tid = tid
        led.rss_pages = th.rss_pages
        led.env_key = th.env_key
        return led
    return st


def list_pids():
    """The pids (thread-group leaders) now in /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    return [int(n) for n in names if n.isdigit()]


def read_children(pid, st=None):
    """Children of a process's main thread (/proc/PID/task/PID/children; may be missing).
    When its main thread has exited (st.live_tid), its children were handed to the live
    threads: those of every thread."""
    if st is not None and st.live_tid is not None:
        try:
            tids = [int(n) for n in os.listdir("/proc/%d/task" % pid) if n.isdigit()]
        except OSError:
            return []
    else:
        tids = [pid]
    children = []
    for tid in tids:
        try:
            children.extend(int(x) for x in read_small("/proc/%d/task/%d/children" % (pid, tid), 65536).split())
        except (OSError, ValueError):
            pass
    return children


def parse_pss(text):
    """The Pss of /proc/PID/smaps_rollup text, in bytes; None when absent. Pure."""
    for line in text.splitlines():
        if line.startswith("Pss:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def tree_pss(pids):
    """Sum of the processes' PSS in bytes; None when a live one's smaps_rollup is unreadable
    (kernel < 4.14, or not ours) so the caller falls back to RSS."""
    total = 0
    for pid in pids:
        try:
            value = parse_pss(read_all("/proc/%d/smaps_rollup" % pid).decode("ascii", "replace"))
        except OSError:
            value = None
        if value is None:
            st = read_stat(pid)
            if st is None:
                continue  # gone meanwhile
            if st.live_tid is None:
                return None
            try:  # its main thread has exited (its own file reads empty): a live thread's
                value = parse_pss(read_all(st.proc_dir() + "/smaps_rollup").decode("ascii", "replace"))
            except OSError:
                return None
            if value is None:
                return None
        total += value
    return total


def count_fds(pid, st=None):
    """Number of open file descriptors of a process (st: its stat, for one whose main thread
    has exited); 0 when unreadable."""
    try:
        return len(os.listdir((st.proc_dir() if st is not None else "/proc/%d" % pid) + "/fd"))
    except OSError:
        return 0


def read_environ(pid):
    """The bytes of a process's initial environment, or None when unreadable. Once its main
    thread has exited, /proc/PID/environ reads empty while a live thread's still shows it."""
    try:
        data = read_all("/proc/%d/environ" % pid)
    except OSError:
        data = None
    if not data:  # unreadable or empty: empty is also what an exited main thread shows
        st = read_stat(pid)
        if st is not None and st.live_tid is not None:
            try:
                data = read_all(st.proc_dir() + "/environ")
            except OSError:
                return None
    return data


def environ_has(pid, needle):
    """Whether /proc/PID/environ holds the NUL-delimited entry `needle`; None if unreadable."""
    data = read_environ(pid)
    if data is None:
        return None
    return needle in b"\0" + data + b"\0"


def environ_value(pid, name):
    """The value of one variable in a process's initial environment, or None."""
    data = read_environ(pid)
    if data is None:
        return None
    prefix = name.encode() + b"="
    for entry in data.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix):].decode("utf-8", "replace")
    return None


def ancestors(pid):
    """pid and all its ancestors up to init, read from /proc."""
    chain = set()
    while pid > 0 and pid not in chain:
        chain.add(pid)
        st = read_stat(pid)
        if st is None:
            break
        pid = st.ppid
    return chain


def cgroup_procs_file(path):
    """The cgroup.procs file for a cgroup given as a folder or as that file itself."""
    if os.path.basename(path) in ("cgroup.procs", "tasks"):
        return path
    return os.path.join(path, "cgroup.procs")


def read_cgroup_pids(files):
    """Pids listed in the given cgroup.procs files (missing files are skipped)."""
    pids = set()
    for path in files:
        try:
            pids.update(int(x) for x in read_small(path, 1 << 20).split())
        except (OSError, ValueError):
            pass
    return pids


# --------------------------------------------------------------------------- the job tree


class TreeFinder(object):
    """Finds the processes of one job: session/group == pid, the environ marker, cgroups."""

    def __init__(self, job_pid, job_id, cgroup_paths, exclude, main_has_ended=False,
                 supervisor=None):
        """main_has_ended: PID already ended (sweep), so a live PID without the marker is a
        reused number. The watch must not assume that: it may start while PID is still the
        supervisor's subshell, before the exec that gives it the marker and its session.
        supervisor: see the module comment (descendants of the subreaper)."""
        self.job_pid = job_pid
        self.supervisor = supervisor
        sup = read_stat(supervisor) if supervisor is not None else None
        self.helper_session = sup.session if sup is not None else None
        self.needle = b"\0" + os.fsencode("%s=%s" % (MARKER_VAR, job_id)) + b"\0"
        self.cgroup_files = sorted(set(cgroup_procs_file(p) for p in cgroup_paths if p))
        self.exclude = set(exclude)
        self.marker_cache = {}
        first = read_stat(job_pid)
        self.job_start = first.starttime if first is not None and not first.is_dead() else None
        # Session/group matching is by number: it stops once that number could name another job.
        self.session_ok = True
        if (main_has_ended and self.job_start is not None
                and environ_has(job_pid, self.needle) is False):
            self.session_ok = False

    def job_alive(self, st):
        """Whether the job's main process still runs (st: its stat now, or None)."""
        if st is None or st.is_dead():
            return False
        return self.job_start is None or st.starttime == self.job_start

    def check_reuse(self, st):
        """Turns session matching off when PID now names a different process."""
        if st is not None and self.job_start is not None and st.starttime != self.job_start:
            self.session_ok = False

    def has_marker(self, st, new_cache):
        """Whether a process carries GPUQ_JOB_ID=ID, cached until it execs or the pid is reused."""
        if st.env_key == (0, 0):
            return False
        key = (st.starttime, st.env_key)
        hit = self.marker_cache.get(st.pid)
        if hit is not None and hit[0] == key:
            new_cache[st.pid] = hit
            return hit[1]
        found = environ_has(st.pid, self.needle) is True
        new_cache[st.pid] = (key, found)
        return found

    def cgroup_members(self):
        """Pids in the job's cgroups, less the excluded ones."""
        if not self.cgroup_files:
            return set()
        return read_cgroup_pids(self.cgroup_files) - self.exclude

    def scan(self):
        """Full /proc rescan: {pid: ProcStat} of the tree (zombies included) and the job's stat."""
        job_st = read_stat(self.job_pid)
        self.check_reuse(job_st)
        in_cgroup = self.cgroup_members()
        members = {}
        others = {}
        new_cache = {}
        jp = self.job_pid
        for pid in list_pids():
            if pid in self.exclude:
                continue
            st = read_stat(pid)
            if st is None:
                continue
            if (self.session_ok and (st.session == jp or st.pgrp == jp or pid == jp)) or pid in in_cgroup:
                members[pid] = st
            elif self.has_marker(st, new_cache):
                members[pid] = st
            else:
                others[pid] = st
        self.marker_cache = new_cache
        if self.supervisor is not None and others:
            for pid in descendants(self.supervisor, others, members, self.exclude, self.helper_session):
                members[pid] = others[pid]
        return members, job_st


    def walk(self, known):
        """Cheap rescan from the last one: the known members ({pid: starttime}) still there,
        their children, the supervisor's children outside its session, and the cgroups'
        members, with their children in turn. Same result shape as scan()."""
        job_st = read_stat(self.job_pid)
        self.check_reuse(job_st)
        queue = list(known.items())
        queue.extend((pid, None) for pid in self.cgroup_members())
        if self.session_ok:
            queue.append((self.job_pid, None))
        members = {}
        if self.supervisor is not None:
            for pid in read_children(self.supervisor):
                st = read_stat(pid)
                if st is not None and st.session != self.helper_session and pid not in self.exclude:
                    queue.append((pid, st.starttime))
        i = 0
        while i < len(queue):
            pid, start = queue[i]
            i += 1
            if pid in members or pid in self.exclude:
                continue
            st = read_stat(pid)
            if st is None or (start is not None and st.starttime != start):
                continue
            members[pid] = st
            queue.extend((child, None) for child in read_children(pid, st) if child not in members)
        return members, job_st


def descendants(root, candidates, members, blocked, helper_session):
    """The pids among `candidates` ({pid: ProcStat}) that descend from `root` through processes
    that are candidates or `members` themselves, never through a `blocked` pid nor one in
    `helper_session` (the supervisor's own session). Pure."""
    children = {}
    for table in (candidates, members):
        for pid, st in table.items():
            if st.session != helper_session:
                children.setdefault(st.ppid, []).append(pid)
    found = []
    stack = [root]
    seen = set(stack)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child in seen or child in blocked:
                continue
            seen.add(child)
            if child in candidates:
                found.append(child)
            stack.append(child)
    return found


# --------------------------------------------------------------------------- measurements


class CpuMeter(object):
    """Percent of one core used by the tree between two scans, from utime+stime deltas.

    Each process counts its own and its reaped children's time (cutime+cstime); when a tree
    process disappears and its parent is in the tree, the parent's children-time jumps by what
    the dead one had already been counted for, so that much is taken off again.
    """

    def __init__(self, hz):
        self.hz = float(hz)
        self.prev = None
        self.prev_t = None

    def update(self, members, now):
        """Feeds one scan; returns the percent since the previous one (None on the first)."""
        cur = {}
        delta = 0
        for pid, st in members.items():
            key = (pid, st.starttime)
            total = st.cpu_ticks + st.child_ticks
            cur[key] = (total, st.ppid)
            if self.prev is not None:
                old = self.prev.get(key)
                delta += total - (old[0] if old is not None else 0)
        pct = None
        if self.prev is not None:
            for key, (total, ppid) in self.prev.items():
                if key not in cur and ppid in members:
                    delta -= total
            dt = now - self.prev_t
            pct = round(max(0.0, delta / self.hz / dt * 100.0), 1) if dt > 0 else 0.0
        self.prev = cur
        self.prev_t = now
        return pct


def folder_size(root):
    """Apparent size in bytes of the files under root (like `du -sb`, hard links once)."""
    total = 0
    seen = set()
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            it = os.scandir(path)
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_nlink > 1:
                    ident = (st.st_dev, st.st_ino)
                    if ident in seen:
                        continue
                    seen.add(ident)
                total += st.st_size
    return total


class FolderSizer(object):
    """Job folder size, recomputed at most every 5 s (less often when the walk is slow)."""

    def __init__(self, root):
        self.root = root
        self.value = 0
        self.next_at = 0.0

    def get(self, now):
        """The current (possibly cached) size."""
        if now >= self.next_at:
            t0 = time.monotonic()
            self.value = folder_size(self.root)
            cost = time.monotonic() - t0
            self.next_at = now + min(FOLDER_MAX_INTERVAL_S, max(FOLDER_MIN_INTERVAL_S, cost * 50))
        return self.value


# --------------------------------------------------------------------------- GPUs


def which(name):
    """The executable `name` on PATH, or None."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(folder or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def parse_number(cell):
    """A number from an nvidia-smi CSV cell ("1234", "1234 MiB", "37 %"); None for N/A & co."""
    cell = cell.strip()
    if not cell or cell.startswith("[") or cell.upper().startswith("N/A"):
        return None
    token = cell.split()[0].rstrip("%")
    try:
        return float(token)
    except ValueError:
        return None


def csv_rows(text, width):
    """Rows of `width` stripped cells from nvidia-smi CSV output; other lines are skipped."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) == width:
            rows.append(cells)
    return rows


def parse_gpus(text):
    """Parses `--query-gpu=index,uuid,memory.used,utilization.gpu` into a list of dicts."""
    gpus = []
    for cells in csv_rows(text, 4):
        index = parse_number(cells[0])
        if index is None:
            continue
        mem = parse_number(cells[2])
        util = parse_number(cells[3])
        gpus.append({"index": int(index), "uuid": cells[1],
                     "mem": int(mem * MIB) if mem is not None else 0,
                     "util": int(round(util)) if util is not None else None})
    gpus.sort(key=lambda g: g["index"])
    return gpus


def parse_apps(text):
    """Parses `--query-compute-apps=pid,used_memory,gpu_uuid`: [(pid, bytes or None, uuid)]."""
    apps = []
    for cells in csv_rows(text, 3):
        pid = parse_number(cells[0])
        if pid is None:
            continue
        mem = parse_number(cells[1])
        apps.append((int(pid), int(mem * MIB) if mem is not None else None, cells[2]))
    return apps


def visible_devices(spec):
    """CUDA_VISIBLE_DEVICES as a list of tokens; None when unset; [] when it hides all GPUs."""
    if spec is None:
        return None
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    if not tokens or tokens[0] in ("-1", "NoDevFiles"):
        return []
    return tokens


def select_gpus(gpus, tokens):
    """The GPUs named by CUDA_VISIBLE_DEVICES tokens (indices or GPU-uuid prefixes)."""
    if tokens is None:
        return list(gpus)
    chosen = []
    for token in tokens:
        for g in gpus:
            if (token.isdigit() and int(token) == g["index"]) or (
                    token.startswith("GPU-") and g["uuid"].startswith(token)):
                if g not in chosen:
                    chosen.append(g)
    return chosen


def gpu_sample(snapshot, tokens, tree_pids):
    """The `gpu` field of a sample from the latest nvidia-smi snapshot; None without one."""
    if snapshot is None:
        return None
    gpus, apps = snapshot
    by_uuid = dict((g["uuid"], g["index"]) for g in gpus)
    job_mem = None
    if apps is not None:
        job_mem = dict((g["index"], 0) for g in gpus)
        for pid, mem, uuid in apps:
            if pid in tree_pids and uuid in by_uuid and mem is not None:
                job_mem[by_uuid[uuid]] += mem
    return [{"index": g["index"], "memUsedBytes": g["mem"], "utilPct": g["util"],
             "jobMemBytes": job_mem.get(g["index"]) if job_mem is not None else None}
            for g in select_gpus(gpus, tokens)]


def run_quiet(argv, env, timeout):
    """Runs a command; its stdout as text when it exits 0 in time, else None."""
    import subprocess
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, close_fds=True)
    except OSError:
        return None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass  # stuck in the driver: leave it, never block the monitor on it
        return None
    if proc.returncode != 0:
        return None
    return out.decode("utf-8", "replace")


class GpuPoller(object):
    """Queries nvidia-smi in a background thread, at most every 2 s, and keeps the latest.

    The interval grows with nvidia-smi's own CPU cost (kept near 2% of a core), so a slow
    driver never makes the monitor expensive; a query never blocks sampling or the memory watch.
    """

    def __init__(self, smi):
        import threading
        self.smi = smi
        self.env = dict((k, v) for k, v in os.environ.items() if k != MARKER_VAR)
        self.lock = threading.Lock()
        self.latest = None
        self.latest_at = 0.0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="gpu-poller", daemon=True)

    def start(self):
        """Starts the polling thread."""
        self.thread.start()

    def stop(self):
        """Asks the polling thread to stop (it is a daemon: nothing waits for it)."""
        self.stop_event.set()

    def query(self):
        """One snapshot: (gpus, apps or None), or None when nvidia-smi fails."""
        fmt = "--format=csv,noheader,nounits"
        text = run_quiet([self.smi, "--query-gpu=index,uuid,memory.used,utilization.gpu", fmt],
                         self.env, GPU_TIMEOUT_S)
        if text is None:
            return None
        gpus = parse_gpus(text)
        if not gpus:
            return None
        apps_text = run_quiet([self.smi, "--query-compute-apps=pid,used_memory,gpu_uuid", fmt],
                              self.env, GPU_TIMEOUT_S)
        return gpus, (parse_apps(apps_text) if apps_text is not None else None)

    def loop(self):
        """Thread body: query, publish, wait an interval scaled to the query's CPU cost."""
        import resource
        while not self.stop_event.is_set():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            snapshot = self.query()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cost = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            with self.lock:
                if snapshot is not None:
                    self.latest = snapshot
                    self.latest_at = time.monotonic()
            interval = min(GPU_MAX_INTERVAL_S, max(GPU_MIN_INTERVAL_S, cost * 50))
            if snapshot is None:
                interval = max(interval, GPU_FAIL_INTERVAL_S)
            self.stop_event.wait(interval)

    def snapshot(self):
        """The latest snapshot, or None if there is none younger than 30 s."""
        with self.lock:
            if self.latest is None or time.monotonic() - self.latest_at > GPU_STALE_S:
                return None
            return self.latest


# --------------------------------------------------------------------------- files


def open_job_file(path, flags, mode="r"):
    """Opens a file of the job folder, which the job may have replaced: never through a link,
    never blocking (a FIFO opened for writing without a reader fails at once, one opened for
    reading is refused below), and only a regular file; raises OSError otherwise. A blocking
    open of a planted FIFO would hang the monitor, and the supervisor that waits for it."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file: %s" % path)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def write_atomic(path, text):
    """Writes a file by writing path.tmp and renaming it over path; False on failure. The tmp
    name is made afresh (whatever the job put there is removed first), so it is a regular file."""
    tmp = path + ".tmp"
    try:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        with open_job_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return True
    except OSError:
        return False


JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                "\b": "\\b", "\f": "\\f"}


def json_string(text):
    """A str as a JSON string, ASCII only, as json.dumps writes it. Pure."""
    out = []
    for c in text:
        escaped = JSON_ESCAPES.get(c)
        if escaped is not None:
            out.append(escaped)
        elif " " <= c <= "~":
            out.append(c)
        else:
            n = ord(c)
            if n > 0xFFFF:  # a surrogate pair, as json writes it
                n -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 | (n >> 10), 0xDC00 | (n & 0x3FF)))
            else:
                out.append("\\u%04x" % n)
    return '"' + "".join(out) + '"'


def json_text(value):
    """A value made of None, bools, ints, floats, strs, lists, tuples and dicts as compact JSON
    text, exactly as json.dumps(value, separators=(",", ":")) writes it: importing json (and re
    with it) would cost every monitor start more than all its samples of a short job. Pure."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(json_string(json_key(k)) + ":" + json_text(v) for k, v in value.items()) + "}"
    raise TypeError("not JSON: %r" % (type(value),))


def json_key(key):
    """A dict key as json.dumps turns it into a string."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json_text(key)
    raise TypeError("not a JSON key: %r" % (type(key),))


def load_monitor_file(path):
    """A previous monitor.json (a restarted monitor resumes its peaks), or None."""
    try:
        with open_job_file(path, os.O_RDONLY) as f:
            text = f.read(1024 * 1024)
    except (OSError, ValueError):
        return None
    import json  # only here: a monitor that starts afresh (the usual case) never needs it
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("version") == 1 else None


def kill_pids(pids, group=None, sig=signal.SIGKILL):
    """Sends `sig` (SIGKILL) to each pid (and the process group `group`); returns the pids the
    signal reached."""
    hit = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            hit.append(pid)
        except OSError:
            pass
    if group is not None and group > 1:
        try:
            os.killpg(group, sig)
        except OSError:
            pass
    return hit


# --------------------------------------------------------------------------- watch


class Peaks(object):
    """The running content of monitor.json."""

    FIELDS = ("peakRssBytes", "peakProcs", "peakThreads", "peakOpenFiles", "peakFolderBytes")

    def __init__(self, previous):
        prev = previous or {}
        self.samples = int(prev.get("samples") or 0)
        self.values = dict((k, int(prev.get(k) or 0)) for k in self.FIELDS)
        gpu = prev.get("peakGpuMemBytes")
        self.gpu = int(gpu) if isinstance(gpu, (int, float)) else None
        self.fired = bool(prev.get("memoryWatchFired"))
        rss = prev.get("memoryWatchRssBytes")
        self.fired_rss = int(rss) if isinstance(rss, (int, float)) else None
        first = prev.get("firstOomKillAtMs")
        self.first_oom_ms = int(first) if isinstance(first, (int, float)) else None
        hit = prev.get("cpuLimitHit")
        self.cpu_hit = hit if isinstance(hit, dict) else None

    def add(self, sample):
        """Counts a sample; True when any peak rose."""
        self.samples += 1
        changed = False
        for field, key in (("peakRssBytes", "rssBytes"), ("peakProcs", "procs"),
                           ("peakThreads", "threads"), ("peakOpenFiles", "openFiles"),
                           ("peakFolderBytes", "folderBytes")):
            if sample[key] > self.values[field]:
                self.values[field] = sample[key]
                changed = True
        if sample["gpu"] is not None:
            used = sum(g["memUsedBytes"] for g in sample["gpu"])
            if self.gpu is None or used > self.gpu:
                self.gpu = used
                changed = True
        return changed

    def add_folder(self, size):
        """A folder size measured outside a sample (the final pass); True when the peak rose."""
        if size > self.values["peakFolderBytes"]:
            self.values["peakFolderBytes"] = size
            return True
        return False

    def to_json(self):
        """monitor.json text, fields as in the MonitorFile interface."""
        doc = {"version": 1, "samples": self.samples}
        doc.update(self.values)
        doc["peakGpuMemBytes"] = self.gpu
        doc["memoryWatchFired"] = self.fired
        doc["memoryWatchRssBytes"] = self.fired_rss
        doc["firstOomKillAtMs"] = self.first_oom_ms
        doc["cpuLimitHit"] = self.cpu_hit
        return json_text(doc) + "\n"


class MemoryWatch(object):
    """Sums the tree's RSS cheaply between full scans: known pids plus their new children."""

    def __init__(self, limit, finder, page):
        self.limit = limit
        self.finder = finder
        self.page = page
        self.known = {}

    def refresh(self, members):
        """Adopts the live members of a full scan as the known tree."""
        self.known = dict((pid, st.starttime) for pid, st in members.items() if not st.is_dead())

    def tick(self):
        """Re-reads the known pids (and finds their children); returns (rss bytes, pids)."""
        queue = list(self.known.items())
        queue.extend((pid, None) for pid in self.finder.cgroup_members() if pid not in self.known)
        seen = {}
        total = 0
        i = 0
        while i < len(queue):
            pid, start = queue[i]
            i += 1
            if pid in seen or pid in self.finder.exclude:
                continue
            st = read_stat(pid)
            if st is None or st.is_dead() or (start is not None and st.starttime != start):
                continue
            seen[pid] = st.starttime
            total += st.rss_pages
            for child in read_children(pid, st):
                if child not in seen:
                    queue.append((child, None))
        self.known = seen
        return total * self.page, list(seen)


def read_oom_kills(path):
    """The oom_kill counter of a memory cgroup folder (v2 memory.events, v1 memory.oom_control),
    or None where it has none or it cannot be read."""
    for name in ("memory.events", "memory.oom_control"):
        try:
            text = read_small(os.path.join(path, name)).decode("ascii", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "oom_kill" and parts[1].isdigit():
                return int(parts[1])
    return None


def read_comm(pid):
    """A process's command name (/proc/PID/comm), bounded and printable; '?' when unreadable."""
    try:
        raw = read_small("/proc/%d/comm" % pid, CPU_NAME_MAX)
    except OSError:
        return "?"
    text = raw.decode("utf-8", "replace").strip()
    return "".join(c if c.isprintable() else "?" for c in text)[:CPU_NAME_MAX] or "?"


class CpuLimitWatch(object):
    """Which process of the tree the per-process CPU-time limit (RLIMIT_CPU, `ulimit -t`)
    stopped. The kernel kills such a process without telling the supervisor (only its parent
    sees the wait status), so each process's CPU time (utime+stime, all its threads) is
    tracked; one past half the limit is "hot" and re-read every HOT_CPU_S. A process that
    vanishes having last been seen within `elapsed x threads` (+ two ticks) of the limit, where
    elapsed is the wall time from that sighting to the one that found it gone (at least the
    interval, at most MAX_UNSEEN_S: a monitor delayed on a loaded node widens it), plus
    TICK_SKEW of the limit, or that is seen as a zombie at the limit, is taken as stopped by
    it; the first such is kept. The skew: the kernel charges RLIMIT_CPU by whole scheduler
    ticks, so on a busy CPU a process reaches its limit while /proc (which scales to the exact
    run time) still shows 80-90% of it."""

    def __init__(self, limit_s, hz, interval_s=HOT_CPU_S):
        self.limit = float(limit_s)
        self.hz = float(hz)
        self.interval = interval_s
        self.procs = {}  # pid -> [starttime, cpu seconds, threads, name or None, seen at]
        self.hit = None

    def margin(self, threads, elapsed):
        """CPU seconds a process may have used in `elapsed` s after its last sighting."""
        unseen = min(max(elapsed, self.interval), MAX_UNSEEN_S)
        return unseen * max(1, threads) + 2.0 / self.hz + TICK_SKEW * self.limit

    def observe(self, pid, st, now=None):
        """Feeds one stat of a process of the tree (a zombie's is its final time)."""
        now = time.monotonic() if now is None else now
        rec = self.procs.get(pid)
        if rec is not None and rec[0] != st.starttime:
            self.vanished(pid, rec, now)
            rec = None
        cpu = st.cpu_ticks / self.hz
        if st.is_dead():
            self.procs.pop(pid, None)
            if cpu >= self.limit * (1 - TICK_SKEW) - 2.0 / self.hz:
                self.record(pid, rec[3] if rec is not None and rec[3] else read_comm(pid), cpu)
            return
        name = rec[3] if rec is not None else None
        if name is None and cpu >= self.limit / 2:
            name = read_comm(pid)
        self.procs[pid] = [st.starttime, cpu, st.threads, name, now]

    def sweep_gone(self, present, now=None):
        """After a sample of the whole tree: the tracked pids not in `present` that are really
        gone (a walk may miss a live one; it is re-read) count as vanished."""
        for pid in [p for p in self.procs if p not in present]:
            self.recheck(pid, now)

    def recheck(self, pid, now=None):
        """Re-reads one tracked process."""
        rec = self.procs.get(pid)
        if rec is None:
            return
        read_at = time.monotonic()
        st = read_stat(pid)
        now = read_at if now is None else now
        if st is None or st.starttime != rec[0]:
            del self.procs[pid]
            self.vanished(pid, rec, now)
        else:
            self.observe(pid, st, now)

    def hot(self):
        """Pids past half the limit."""
        return [pid for pid, rec in self.procs.items() if rec[1] >= self.limit / 2]

    def tick(self, now=None):
        """Re-reads the hot processes (between samples)."""
        for pid in self.hot():
            self.recheck(pid, now)

    def vanished(self, pid, rec, now):
        """A tracked process is gone: at the limit (within the margin) it was stopped by it."""
        if rec[1] >= self.limit - self.margin(rec[2], now - rec[4]):
            self.record(pid, rec[3] or "?", max(rec[1], 0.0))

    def record(self, pid, name, cpu):
        """Keeps the first process the limit stopped."""
        if self.hit is None:
            self.hit = {"pid": pid, "name": name, "cpuSeconds": round(cpu, 2)}


class ContainerCgroups(object):
    """The cgroups of the job's container (--isolation docker): found through a process of the
    job (it carries the marker) whose /proc/PID/cgroup names the container's id (docker run's
    --cidfile), read while they exist (Docker removes them with the container) and written to
    JOBDIR/container.evidence as `key value` lines for the supervisor: cgroup (v1/v2), oom_kill,
    memory_peak, pids_refused, pids_peak, cpu_usec. Once found, the memory and pids cgroups also
    join the job tree and the OOM check."""

    def __init__(self, cidfile, cgroup_root, out_path):
        self.cidfile = cidfile
        self.root = cgroup_root
        self.out_path = out_path
        self.cid = None
        self.paths = None
        self.version = None
        self.values = {}
        self.written = None

    def read_cid(self):
        """The container id from the cidfile (64 hex digits), or None until docker wrote it."""
        if self.cid is None:
            try:
                text = read_small(self.cidfile, 128).decode("ascii", "replace").strip()
            except OSError:
                return None
            if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
                self.cid = text
        return self.cid

    def resolve(self, pids):
        """Finds the container's cgroup folders through one of `pids`; True once found."""
        if self.paths is not None:
            return True
        cid = self.read_cid()
        if cid is None:
            return False
        for pid in pids:
            try:
                text = read_small("/proc/%d/cgroup" % pid, 8192).decode("utf-8", "replace")
            except OSError:
                continue
            if cid not in text:
                continue
            paths = {}
            version = "v1"
            for line in text.splitlines():
                parts = line.split(":", 2)
                if len(parts) != 3 or cid not in parts[2]:
                    continue
                rel = parts[2].lstrip("/")
                if parts[0] == "0" and parts[1] == "":
                    # the unified hierarchy: the cgroups themselves only where it is mounted at the root
                    folder = os.path.join(self.root, rel)
                    if os.path.exists(os.path.join(self.root, "cgroup.controllers")) and os.path.isdir(folder):
                        version = "v2"
                        for name in ("memory", "pids", "cpu"):
                            paths[name] = folder
                    continue
                for ctrl in parts[1].split(","):
                    for mount in (parts[1], ctrl):
                        folder = os.path.join(self.root, mount, rel)
                        if os.path.isdir(folder):
                            paths[ctrl] = folder
                            break
            if paths:
                self.paths = paths
                self.version = version
                return True
        return False

    def read_counter(self, ctrl, name, key=None):
        """One number of a control file (the value of line `key`, or the whole file), or None."""
        folder = self.paths.get(ctrl) if self.paths else None
        if folder is None:
            return None
        try:
            text = read_small(os.path.join(folder, name)).decode("ascii", "replace")
        except OSError:
            return None
        if key is None:
            text = text.strip()
            return int(text) if text.isdigit() else None
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
                return int(parts[1])
        return None

    def tick(self, full=True):
        """Reads the counters (keeping the last values once the cgroup is gone) and rewrites
        container.evidence when they changed. Between samples (full=False) only the two that
        a dying container changes last: its OOM kills and refused forks."""
        if self.paths is None:
            return
        v = self.values
        v["cgroup"] = self.version
        oom = read_oom_kills(self.paths["memory"]) if "memory" in self.paths else None
        if oom is not None:
            v["oom_kill"] = oom
        refused = self.read_counter("pids", "pids.events", "max")
        if refused is not None:
            v["pids_refused"] = refused
        if full:
            self.read_usage(v)
        text = "".join("%s %s\n" % (k, v[k]) for k in sorted(v))
        if text != self.written and write_atomic(self.out_path, text):
            self.written = text

    def read_usage(self, v):
        """Peak memory, CPU time and peak processes into `v`."""
        if self.version == "v2":
            peak = self.read_counter("memory", "memory.peak")
            if peak is None:
                peak = self.read_counter("memory", "memory.current")
            cpu = self.read_counter("cpu", "cpu.stat", "usage_usec")
        else:
            peak = self.read_counter("memory", "memory.max_usage_in_bytes")
            ns = self.read_counter("cpuacct", "cpuacct.usage")
            cpu = ns // 1000 if ns is not None else None
        if peak is not None:
            v["memory_peak"] = max(peak, v.get("memory_peak", 0))
        if cpu is not None:
            v["cpu_usec"] = cpu
        current = self.read_counter("pids", "pids.peak")
        if current is None:
            current = self.read_counter("pids", "pids.current")
        if current is not None:
            v["pids_peak"] = max(current, v.get("pids_peak", 0))


class Watcher(object):
    """State and main loop of `monitor.py watch`."""

    def __init__(self, args):
        self.dir = os.path.abspath(args.dir)
        self.job_pid = args.pid
        # What the final sweep needs, as the sweep command gets it (never the container's cgroups).
        self.sweep_args = (args.pid, args.job_id, [args.cgroup_pids, args.cgroup_memory], args.supervisor)
        self.requests = Requests(0) if args.requests else None
        self.samples_path = os.path.join(self.dir, "samples.jsonl")
        self.monitor_path = os.path.join(self.dir, "monitor.json")
        self.fired_path = os.path.join(self.dir, "memory.fired")
        exclude = ancestors(os.getpid())
        self.finder = TreeFinder(args.pid, args.job_id, [args.cgroup_memory, args.cgroup_pids], exclude,
                                 supervisor=args.supervisor)
        self.pids_path = os.path.join(self.dir, "pids.seen")
        self.pids_seen = set()
        self.known = {}
        self.next_full_scan = 0.0
        self.next_pss = 0.0
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.cpu = CpuMeter(os.sysconf("SC_CLK_TCK"))
        self.sizer = FolderSizer(self.dir)
        self.peaks = Peaks(load_monitor_file(self.monitor_path))
        self.watch = None
        self.container = None
        if args.container_cidfile:
            # Docker enforces --memory in the container; the monitor only reads its cgroup.
            self.container = ContainerCgroups(args.container_cidfile, args.cgroup_root,
                                              os.path.join(self.dir, "container.evidence"))
            # PID is the `docker run` client: gpuq's, not the job's (its memory is not the job's).
            self.finder.exclude.add(args.pid)
        elif args.memory_bytes and not args.cgroup_memory:
            self.watch = MemoryWatch(args.memory_bytes, self.finder, self.page)
        self.watch_interval = max(0.01, args.watch_interval)
        self.oom_path = args.cgroup_memory
        self.oom_count = 0  # the job's cgroup is its own, made empty: any kill counted is the job's
        self.cpu_limit = None
        if args.cpu_time_s:
            self.cpu_limit = CpuLimitWatch(args.cpu_time_s, os.sysconf("SC_CLK_TCK"))
            self.cpu_limit.hit = self.peaks.cpu_hit
        self.gpu = None
        # CUDA_VISIBLE_DEVICES: the monitor's own, else (once known) the job's.
        self.gpu_tokens = visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))
        self.gpu_tokens_known = "CUDA_VISIBLE_DEVICES" in os.environ
        if args.gpus is not None:  # a container's leased GPUs, as host indices
            self.gpu_tokens = visible_devices(args.gpus)
            self.gpu_tokens_known = True
        smi = which("nvidia-smi")
        if smi is not None and self.gpu_tokens != []:
            self.gpu = GpuPoller(smi)
        self.out = None
        self.last_write = 0.0
        self.empty_since = None
        self.started = time.monotonic()
        self.stop = False
        self.done = False

    # -- files

    def write_monitor(self):
        """Rewrites monitor.json atomically."""
        if write_atomic(self.monitor_path, self.peaks.to_json()):
            self.last_write = time.monotonic()

    def append_sample(self, sample):
        """Appends one line to samples.jsonl and flushes it; a full disk only loses the line."""
        line = json_text(sample) + "\n"
        try:
            if self.out is None:
                self.out = open_job_file(self.samples_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, "a")
            self.out.write(line)
            self.out.flush()
        except (OSError, ValueError):
            self.close_samples()

    def close_samples(self):
        """Closes samples.jsonl (reopened on the next sample)."""
        if self.out is not None:
            try:
                self.out.close()
            except OSError:
                pass
            self.out = None

    # -- memory watch

    def check_memory(self, rss, pids):
        """Fires the memory watch (once) when the tree's memory is over the limit; kills after.

        The RSS sum counts pages that processes share (a fork's copy-on-write memory, data
        loader workers) once per process, so it only triggers the check; the tree's PSS
        (proportional set size, each shared page split between its sharers) decides, read
        at most every PSS_INTERVAL_S while the RSS sum stays over the limit."""
        if self.watch is None:
            return
        if self.peaks.fired:
            if pids:
                kill_pids(pids, self.job_pid if self.finder.session_ok else None)
            return
        if rss <= self.watch.limit:
            return
        if len(pids) > 1:
            now = time.monotonic()
            if now < self.next_pss:
                return
            self.next_pss = now + PSS_INTERVAL_S
            pss = tree_pss(pids)
            if pss is not None:
                if pss <= self.watch.limit:
                    return
                rss = pss
        self.peaks.fired = True
        self.peaks.fired_rss = rss
        self.write_monitor()
        try:
            with open_job_file(self.fired_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "w") as f:
                f.write("%d\n" % rss)
        except OSError:
            pass
        kill_pids(pids, self.job_pid if self.finder.session_ok else None)

    def watch_tick(self):
        """The fast memory check between full scans."""
        rss, pids = self.watch.tick()
        self.check_memory(rss, pids)

    # -- when an OOM kill happened, which process the CPU-time limit stopped

    def check_oom(self):
        """Notes the time the cgroup's oom_kill counter first rose (firstOomKillAtMs)."""
        if self.oom_path is None or self.peaks.first_oom_ms is not None:
            return
        count = read_oom_kills(self.oom_path)
        if count is None:
            return
        if self.oom_count is not None and count > self.oom_count:
            self.peaks.first_oom_ms = int(time.time() * 1000)
            self.write_monitor()
        self.oom_count = count

    def note_cpu(self, members, read_at):
        """Feeds a sample's tree to the CPU-time watch; rewrites monitor.json on a new hit.
        `read_at`: when the scan began (a scan on a loaded node takes a while; its stats are
        as old as that)."""
        if self.cpu_limit is None:
            return
        before = self.cpu_limit.hit
        for pid, st in members.items():
            self.cpu_limit.observe(pid, st, read_at)
        self.cpu_limit.sweep_gone(members)
        self.publish_cpu_hit(before)

    def cpu_tick(self):
        """The fast re-read of the processes near the CPU-time limit."""
        before = self.cpu_limit.hit
        self.cpu_limit.tick()
        self.publish_cpu_hit(before)

    def publish_cpu_hit(self, before):
        """Writes monitor.json when the CPU-time watch found its process."""
        if self.cpu_limit.hit is not None and before is None:
            self.peaks.cpu_hit = self.cpu_limit.hit
            self.write_monitor()

    def fast_interval(self):
        """Seconds to the next OOM/CPU-time check, or None when neither is needed."""
        if self.cpu_limit is not None and self.cpu_limit.hot():
            return HOT_CPU_S
        if self.oom_path is not None and self.peaks.first_oom_ms is None:
            return CONTAINER_CHECK_S if self.container is not None else OOM_CHECK_S
        if self.container is not None and self.container.paths is not None:
            return CONTAINER_CHECK_S  # the container's counters, read while its cgroup exists
        return None

    def fast_tick(self):
        """The OOM counter and the hot processes, between samples."""
        self.check_oom()
        if self.container is not None:
            self.container.tick(full=False)
        if self.cpu_limit is not None:
            self.cpu_tick()

    # -- sampling

    def resolve_gpu_tokens(self, job_alive):
        """Takes CUDA_VISIBLE_DEVICES from the job's environment once it has exec'd the job
        (its environ holds the marker), or all GPUs when the job is gone without telling."""
        if self.gpu_tokens_known:
            return
        if environ_has(self.job_pid, self.finder.needle):
            self.gpu_tokens = visible_devices(environ_value(self.job_pid, "CUDA_VISIBLE_DEVICES"))
            self.gpu_tokens_known = True
        elif not job_alive or time.monotonic() - self.started > FAST_PERIOD_S:
            self.gpu_tokens_known = True

    def gpu_field(self, live, job_alive):
        """The `gpu` field of a sample."""
        if self.gpu is None:
            return None
        self.resolve_gpu_tokens(job_alive)
        if not self.gpu_tokens_known:
            return None
        return gpu_sample(self.gpu.snapshot(), self.gpu_tokens, live)

    def cadence(self, job_alive):
        """Seconds to the next sample."""
        if not job_alive:
            return DEAD_CADENCE_S
        if self.peaks.samples >= MAX_SAMPLE_LINES:
            return SLOW_CADENCE_S
        return cadence_for(time.monotonic() - self.started)

    def find_tree(self):
        """The tree now: a full /proc scan in the first seconds and every FULL_SCAN_S, a walk
        from the known tree in between."""
        now = time.monotonic()
        # A container's processes cannot leave its cgroups: once they are known, no /proc scan.
        in_container = self.container is not None and self.container.paths is not None
        if now >= self.next_full_scan and not in_container:
            members, job_st = self.finder.scan()
            fast = now - self.started < FAST_PERIOD_S
            self.next_full_scan = now + (CADENCE_S if fast else FULL_SCAN_S)
        else:
            members, job_st = self.finder.walk(self.known)
        self.known = dict((pid, st.starttime) for pid, st in members.items() if not st.is_dead())
        return members, job_st

    def sample(self, record=True):
        """Scan, memory check, one sample line, peaks, the exit check; returns job_alive."""
        read_at = time.monotonic()
        members, job_st = self.find_tree()
        now = time.monotonic()
        live = dict((pid, st) for pid, st in members.items() if not st.is_dead())
        rss = sum(st.rss_pages for st in live.values()) * self.page
        if self.watch is not None:
            self.watch.refresh(members)
            self.check_memory(rss, list(live))
        cpu_pct = self.cpu.update(members, now)
        job_alive = self.finder.job_alive(job_st)
        self.note_pids(live)
        self.note_cpu(members, read_at)
        self.container_tick(live)
        self.check_oom()
        if record:
            sample = {
                "t": int(time.time() * 1000),
                "rssBytes": rss,
                "cpuPct": cpu_pct if cpu_pct is not None else 0.0,
                "procs": len(live),
                "threads": sum(st.threads for st in live.values()),
                "openFiles": sum(count_fds(pid, st) for pid, st in live.items()),
                "folderBytes": self.sizer.get(now),
                "gpu": self.gpu_field(live, job_alive),
            }
            self.append_sample(sample)
            if self.peaks.add(sample) or now - self.last_write >= MONITOR_MIN_REWRITE_S:
                self.write_monitor()
        if job_alive or live:
            self.empty_since = None
        elif self.empty_since is None:
            self.empty_since = now
        elif now - self.empty_since >= self.exit_after():
            self.done = True
        return job_alive

    def exit_after(self):
        """Seconds the tree must have been gone before the monitor stops by itself: longer while
        the supervisor may still ask for the final sweep (its request channel is open)."""
        if self.requests is not None and not self.requests.closed:
            return REQUEST_WAIT_S
        return EXIT_AFTER_EMPTY_S

    def container_tick(self, live):
        """Under Docker: finds the container's cgroups (then part of the tree and the OOM
        check) and records their counters."""
        if self.container is None:
            return
        if self.container.paths is None and self.container.resolve(live):
            p = self.container.paths
            self.finder.cgroup_files = sorted(set(
                cgroup_procs_file(p[c]) for c in ("memory", "pids") if c in p))
            if "memory" in p:
                self.oom_path = p["memory"]
                self.oom_count = read_oom_kills(p["memory"]) or 0
        self.container.tick()

    def note_pids(self, live):
        """Appends the tree's new pids to pids.seen (the supervisor matches kernel OOM lines)."""
        new = [pid for pid in live if pid not in self.pids_seen]
        if not new:
            return
        self.pids_seen.update(new)
        try:
            with open_job_file(self.pids_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, "a") as f:
                f.write("".join("%d\n" % pid for pid in new))
        except OSError:
            pass

    # -- loop

    def run(self, waker):
        """Samples until stopped; always leaves a final monitor.json."""
        if self.gpu is not None:
            self.gpu.start()
        self.sample()  # at once: a short job may be gone by the next one (its cpuPct reads 0)
        self.write_monitor()
        next_sample = time.monotonic() + FIRST_CADENCE_S
        next_watch = time.monotonic() + self.watch_interval if self.watch else None
        next_fast = None
        alive = True
        try:
            while not self.stop and not self.done:
                if self.requests is not None and self.requests.sweep:
                    self.final_sweep()
                    break
                now = time.monotonic()
                if now >= next_sample:
                    try:
                        alive = self.sample()
                    except Exception:  # never let one odd /proc entry end the monitor
                        report_error("sample")
                    next_sample = time.monotonic() + self.cadence(alive)
                    if next_watch is not None:
                        next_watch = time.monotonic() + self.watch_interval
                elif next_watch is not None and now >= next_watch:
                    try:
                        self.watch_tick()
                    except Exception:
                        report_error("memory watch")
                    next_watch = max(next_watch + self.watch_interval, time.monotonic())
                elif next_fast is not None and now >= next_fast:
                    try:
                        self.fast_tick()
                    except Exception:
                        report_error("oom/cpu-time check")
                    next_fast = None
                if next_fast is None:
                    fast = self.fast_interval()
                    next_fast = time.monotonic() + fast if fast is not None else None
                wake = min(t for t in (next_sample, next_watch, next_fast) if t is not None)
                if waker.wait(wake - time.monotonic(), self.requests):
                    self.requests.read()
        finally:
            if self.gpu is not None:
                self.gpu.stop()
            self.close_samples()
            try:  # a kill just before the stop: the counter, and a hot process gone since its last tick
                self.fast_tick()
            except Exception:
                report_error("oom/cpu-time check")
            self.final_folder()
            self.write_monitor()

    def final_sweep(self):
        """The sweep command's work, asked for by the supervisor once the job's main process has
        ended: the count goes to stdout, and the monitor stops. On an error nothing is written:
        the supervisor, reading no count, runs the sweep command itself."""
        job_pid, job_id, cgroups, supervisor = self.sweep_args
        try:
            count = sweep(job_pid, job_id, cgroups, supervisor=supervisor)
        except Exception:
            report_error("sweep")
            return
        sys.stderr.write("monitor.py: the final sweep killed %d\n" % count)
        sys.stderr.flush()
        try:
            os.write(1, b"%d\n" % count)
        except OSError:
            pass  # the supervisor is gone

    def final_folder(self):
        """Measures the job folder once more as the monitor stops (the job is over by then): a
        file written between two measurements (every 5 s at most) still counts in its peak."""
        try:
            self.peaks.add_folder(folder_size(self.dir))
        except Exception:
            report_error("final folder size")


def cadence_for(age):
    """Seconds between samples for a job `age` seconds old: fast at first, then 1 Hz. Pure."""
    if age < FIRST_PERIOD_S:
        return FIRST_CADENCE_S
    if age < FAST_PERIOD_S:
        return FAST_CADENCE_S
    return CADENCE_S


def report_error(where):
    """Prints the current exception to stderr (the supervisor keeps it in monitor.log)."""
    import traceback
    sys.stderr.write("monitor.py: error in %s:\n%s" % (where, traceback.format_exc()))
    sys.stderr.flush()


class Waker(object):
    """Sleeps that a signal cuts short (signal.set_wakeup_fd on a pipe, select on its end)."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)
        signal.set_wakeup_fd(self.w)

    def wait(self, timeout, requests=None):
        """Waits up to `timeout` seconds, until a signal arrives or, with `requests` (Requests)
        open, until it can be read; returns whether it can."""
        if timeout <= 0:
            return False
        fds = [self.r]
        if requests is not None and not requests.closed:
            fds.append(requests.fd)
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):
            return False
        if self.r in ready:
            try:
                while os.read(self.r, 512):
                    pass
            except OSError:
                pass
        return len(fds) > 1 and fds[1] in ready


class Requests(object):
    """The supervisor's request channel (watch --requests): lines on a pipe. `sweep` asks for the
    final sweep; other lines are ignored. At its end (the supervisor is gone) it is closed."""

    def __init__(self, fd):
        self.fd = fd
        self.closed = False
        self.sweep = False
        self.pending = b""

    def read(self):
        """Reads what is there (the caller saw it readable) and notes the requests it completes."""
        try:
            data = os.read(self.fd, REQUEST_MAX_BYTES)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()[-REQUEST_MAX_BYTES:]
        if b"sweep" in lines:
            self.sweep = True


def run_watch(args):
    """The `watch` command; returns the exit status."""
    watcher = Watcher(args)

    def on_stop(signum, frame):
        watcher.stop = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    watcher.run(Waker())
    return 0


# --------------------------------------------------------------------------- sweep


def cgroup_writable(path, name, exclude):
    """The control file `name` of a v2 cgroup folder when it exists and holds none of `exclude`."""
    if not path or os.path.basename(path) == "cgroup.procs":
        return None
    control = os.path.join(path, name)
    if not os.path.exists(control):
        return None
    if read_cgroup_pids([cgroup_procs_file(path)]) & set(exclude):
        return None
    return control


def write_control(path, value):
    """Writes a cgroup control file; False on failure."""
    try:
        with open(path, "w") as f:
            f.write(value)
        return True
    except OSError:
        return False


def freeze_cgroups(paths, exclude):
    """Freezes the v2 cgroups among paths (that hold neither us nor our ancestors)."""
    frozen = []
    for path in paths:
        control = cgroup_writable(path, "cgroup.freeze", exclude)
        if control is not None and write_control(control, "1"):
            frozen.append(control)
    return frozen


def sweep(job_pid, job_id, cgroup_paths, deadline_s=SWEEP_DEADLINE_S, supervisor=None):
    """Kills the job's tree until a pass finds no live member or the deadline; returns the count."""
    exclude = ancestors(os.getpid())
    paths = sorted(set(p for p in cgroup_paths if p))
    finder = TreeFinder(job_pid, job_id, paths, exclude, main_has_ended=True,
                        supervisor=supervisor)
    killed = set()
    deadline = time.monotonic() + deadline_s
    frozen = freeze_cgroups(paths, exclude)
    try:
        while True:
            members, _ = finder.scan()
            live = [st for st in members.values() if not st.is_dead()]
            starts = dict((st.pid, st.starttime) for st in live)
            for pid in kill_pids([st.pid for st in live], job_pid if finder.session_ok else None):
                killed.add((pid, starts[pid]))
            if not live or time.monotonic() >= deadline:
                break
            time.sleep(SWEEP_PAUSE_S)
    finally:
        for control in frozen:
            write_control(control, "0")
    for path in paths:
        control = cgroup_writable(path, "cgroup.kill", exclude)
        if control is not None:
            write_control(control, "1")
    return len(killed)


def signal_tree(job_pid, job_id, cgroup_paths, sig, supervisor=None):
    """One pass: sends `sig` to every live process of the job's tree (the main one still runs,
    so nothing is assumed about its pid); returns how many it reached."""
    exclude = ancestors(os.getpid())
    finder = TreeFinder(job_pid, job_id, [p for p in cgroup_paths if p], exclude, supervisor=supervisor)
    members, _ = finder.scan()
    return len(kill_pids([st.pid for st in members.values() if not st.is_dead()], None, sig))


def run_sweep(args):
    """The `sweep` command: prints the number of processes killed (signalled with --signal);
    returns the exit status."""
    try:
        if args.signal is not None:
            count = signal_tree(args.pid, args.job_id, [args.cgroup_pids, args.cgroup_memory],
                                getattr(signal, "SIG" + args.signal), supervisor=args.supervisor)
        else:
            count = sweep(args.pid, args.job_id, [args.cgroup_pids, args.cgroup_memory],
                          supervisor=args.supervisor)
    except Exception as exc:  # the supervisor needs a number, whatever happened
        sys.stderr.write("monitor.py sweep: %r\n" % (exc,))
        count = 0
    sys.stdout.write("%d\n" % count)
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- CLI


# The options of each command: (flag, type, required, default, choices). A hand-made parser: the
# options are fixed and only the supervisor writes them, and argparse's import (with re) costs
# every monitor start more than a short job's samples.
COMMANDS = {
    "watch": ("sample the job tree; enforce --memory-bytes", (
        ("--dir", str, True, None, None),
        ("--job-id", str, True, None, None),
        ("--pid", int, True, None, None),
        ("--memory-bytes", int, False, None, None),
        ("--cgroup-memory", str, False, None, None),
        ("--cgroup-pids", str, False, None, None),
        ("--watch-interval", float, False, 0.1, None),
        ("--supervisor", int, False, None, None),
        ("--cpu-time-s", float, False, None, None),
        ("--container-cidfile", str, False, None, None),
        ("--cgroup-root", str, False, "/sys/fs/cgroup", None),
        ("--gpus", str, False, None, None),
        ("--requests", None, False, False, None),
    )),
    "sweep": ("kill what is left of the job tree (with --signal: send that signal once to the "
              "whole tree instead)", (
        ("--job-id", str, True, None, None),
        ("--pid", int, True, None, None),
        ("--cgroup-pids", str, False, None, None),
        ("--cgroup-memory", str, False, None, None),
        ("--supervisor", int, False, None, None),
        ("--signal", str, False, None, ("TERM", "INT", "HUP")),
    )),
}


class UsageError(Exception):
    """A command line that parse_command refuses (the message says why)."""


class HelpRequested(Exception):
    """-h/--help on a command line; `command` is the command it follows, or None."""

    def __init__(self, command):
        Exception.__init__(self, command)
        self.command = command


class Args(object):
    """Parsed options as attributes (--job-id as job_id), and `command`."""


def usage(command=None):
    """The usage text of one command, or of the program."""
    if command is None:
        return "usage: monitor.py {%s} [options]\n" % ",".join(COMMANDS)
    flags = []
    for flag, kind, required, _default, choices in COMMANDS[command][1]:
        text = flag if kind is None else "%s %s" % (flag, "{%s}" % ",".join(choices) if choices
                                                    else flag[2:].replace("-", "_").upper())
        flags.append(text if required else "[%s]" % text)
    return "usage: monitor.py %s %s\n" % (command, " ".join(flags))


def parse_command(argv):
    """An Args for a command line (`--flag value`, `--flag=value`); raises UsageError, or
    HelpRequested for -h/--help. Pure."""
    if not argv:
        raise UsageError("the following arguments are required: command")
    if argv[0] in ("-h", "--help"):
        raise HelpRequested(None)
    command = argv[0]
    if command not in COMMANDS:
        raise UsageError("argument command: invalid choice: %r (choose from %s)"
                         % (command, ", ".join(repr(c) for c in COMMANDS)))
    spec = dict((o[0], o) for o in COMMANDS[command][1])
    args = Args()
    args.command = command
    for flag, _kind, _required, default, _choices in spec.values():
        setattr(args, flag[2:].replace("-", "_"), default)
    given = set()
    i = 1
    while i < len(argv):
        token = argv[i]
        i += 1
        if token in ("-h", "--help"):
            raise HelpRequested(command)
        flag, eq, value = token.partition("=")
        option = spec.get(flag) if flag.startswith("--") else None
        if option is None:
            raise UsageError("unrecognized arguments: %s" % token)
        kind, choices = option[1], option[4]
        if kind is None:  # a switch
            if eq:
                raise UsageError("argument %s: ignored explicit argument %r" % (flag, value))
            value = True
        else:
            if not eq:
                if i >= len(argv):
                    raise UsageError("argument %s: expected one argument" % flag)
                value = argv[i]
                i += 1
            try:
                value = kind(value)
            except ValueError:
                raise UsageError("argument %s: invalid %s value: %r" % (flag, kind.__name__, value))
            if choices is not None and value not in choices:
                raise UsageError("argument %s: invalid choice: %r (choose from %s)"
                                 % (flag, value, ", ".join(repr(c) for c in choices)))
        setattr(args, flag[2:].replace("-", "_"), value)
        given.add(flag)
    missing = [o[0] for o in spec.values() if o[2] and o[0] not in given]
    if missing:
        raise UsageError("the following arguments are required: %s" % ", ".join(missing))
    return args


def parse_args(argv):
    """Parses the command line of either command; exits 2 with the usage and the error on stderr
    for a bad one (as argparse did), 0 after printing the help for -h/--help."""
    try:
        return parse_command(argv)
    except UsageError as exc:
        command = argv[0] if argv and argv[0] in COMMANDS else None
        sys.stderr.write("%smonitor.py: error: %s\n" % (usage(command), exc))
        sys.exit(2)
    except HelpRequested as exc:
        command = exc.command
        if command is None:
            text = usage() + "\ngpuq node-side monitor\n\ncommands:\n" + "".join(
                "  %-6s %s\n" % (name, COMMANDS[name][0]) for name in COMMANDS)
        else:
            text = usage(command) + "\n" + COMMANDS[command][0] + "\n"
        sys.stdout.write(text)
        sys.exit(0)


def main():
    """Entry point."""
    args = parse_args(sys.argv[1:])
    if args.command == "watch":
        sys.exit(run_watch(args))
    sys.exit(run_sweep(args))


if __name__ == "__main__":
    main()
