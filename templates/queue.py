"""gpuq's GPU queue on a node: one waiter per queued job, no daemon (templates/README.md, "GPU leases").

    queue.py wait --lock-dir D --job-id ID --need N --priority P --timeout-s T --submitter U@H
                  --out-dir JOBDIR --foreign-mib M --gpu INDEX:LOCK_FD:HOLD_FD ...

Run by a job's supervisor (run.sh) with the lock files of every GPU of the node already open on
the given descriptors. It puts a ticket into LOCK_DIR/queue (flocked for as long as it waits: a
ticket whose lock can be taken is stale), waits until its ticket is the first of the queue and
NEED GPUs are free (both lock files of each lockable, and no foreign process over the memory
threshold on it), locks them on the inherited descriptors (the locks stay with the supervisor's
copies when this process exits), writes who holds them into the .lock files, removes its ticket
and prints the leased indices ("0,2"). It tells its supervisor it is queued (SIGUSR2) the first
time it has to wait, and keeps OUT_DIR/queue.json (position, what it waits for) current.

Order: higher priority first, then the node's sequence number (taken under a lock, never the
clock). Only the first ticket takes leases (no backfill: a job needing 2 GPUs is never starved by
1-GPU jobs behind it). Waiting is event-driven (inotify): every waiter sleeps until a ticket comes
or goes in the queue folder; the first also until a GPU lock file is closed (a lease is let go
only when the last descriptor of its open file closes, and the kernel reports that close), then
tries its locks at once and a few times in the next 0.3 s (the close is reported a moment before
the lock is dropped). Fallbacks without an event: the first every second, the others every 60 s
(1 s and 50 ms where inotify is missing). Exit 0 with the indices; 1 when the supervisor died; 3
when the lock folder cannot be used.
"""
import ctypes
import errno
import fcntl
import json
import os
import re
import select
import signal
import struct
import sys
import time

# The first ticket: after a lock file's close, tries again every HEAD_RETRY_S for HEAD_BURST_S
# (the close event comes just before the kernel drops the lock); without any event, every
# HEAD_IDLE_S (a safety net: every lease is let go by a close).
HEAD_RETRY_S = 0.02
HEAD_BURST_S = 0.3
HEAD_IDLE_S = 1.0
HEAD_POLL_NO_INOTIFY_S = 0.05
# The others wake on queue changes (inotify), and look again shortly after one (a dead waiter's
# close comes just before its ticket's lock is dropped); IDLE_POLL_S is only their fallback.
SETTLE_S = (0.05, 0.3)
IDLE_POLL_S = 60.0
IDLE_POLL_NO_INOTIFY_S = 1.0
# nvidia-smi (foreign GPU use): the first ticket asks every FOREIGN_MIN_INTERVAL_S (or 100 times
# what one call costs, at most 1% of a core) while a GPU is used outside gpuq, otherwise every
# FOREIGN_IDLE_INTERVAL_S (or 500 times its cost, at most 0.2%): while gpuq jobs hold every GPU
# the answer only matters at the hand-off.
FOREIGN_MIN_INTERVAL_S = 5.0
FOREIGN_IDLE_INTERVAL_S = 15.0
HOLDER_MAX = 4096
TICKET_RE = re.compile(r"^q-(\d{4})-(\d{12})-([0-9a-z]{1,32})-(\d{1,2})-(\d{1,9})$")
IN_CLOSE_WRITE, IN_CLOSE_NOWRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x8, 0x10, 0x40, 0x80, 0x100, 0x200
IN_Q_OVERFLOW = 0x4000
QUEUE_MASK = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
LOCKS_MASK = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE
LOCK_NAME_RE = re.compile(r"^gpu-(\d{1,9})\.(lock|hold)$")
EVENT = struct.Struct("iIII")
PR_SET_PDEATHSIG = 1


def now_ms():
    return int(time.time() * 1000)


def parse_args(argv):
    """The options as a dict; SystemExit(2) on anything malformed."""
    a = {"gpu": []}
    i = 0
    names = ("--lock-dir", "--job-id", "--need", "--priority", "--timeout-s", "--submitter",
             "--out-dir", "--foreign-mib", "--gpu")
    while i < len(argv):
        k = argv[i]
        if k not in names or i + 1 >= len(argv):
            sys.stderr.write("queue.py: bad option %r\n" % k)
            sys.exit(2)
        v = argv[i + 1]
        if k == "--gpu":
            parts = v.split(":")
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                sys.exit(2)
            a["gpu"].append(tuple(int(p) for p in parts))
        else:
            a[k[2:].replace("-", "_")] = v
        i += 2
    for k in ("lock_dir", "job_id", "need", "priority", "out_dir"):
        if k not in a:
            sys.exit(2)
    a["need"] = int(a["need"])
    a["priority"] = max(-1000, min(1000, int(a["priority"])))
    a["timeout_s"] = int(float(a.get("timeout_s", "0") or 0))
    a["foreign_mib"] = float(a.get("foreign_mib", "0") or 0)
    if not re.match(r"^[0-9a-z]{1,32}$", a["job_id"]) or a["need"] < 1 or a["need"] > len(a["gpu"]):
        sys.exit(2)
    return a


def try_flock(fd, kind=fcntl.LOCK_EX):
    """Takes a lock without waiting; False when someone else holds it."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise


def open_no_create(path, flags):
    """Opens an existing file without following a link (O_CREAT on another account's file in a
    sticky folder is refused under fs.protected_regular, so creating is a separate step)."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


def next_seq(qdir):
    """The node's next queue number, under a lock on queue/.seq: a clock step cannot reorder."""
    path = os.path.join(qdir, ".seq")
    try:
        fd = open_no_create(path, os.O_RDWR)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            os.fchmod(fd, 0o666)
        except OSError as e2:
            if e2.errno != errno.EEXIST:
                raise
            fd = open_no_create(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        n = int(raw) + 1 if raw.isdigit() else 1
        n = n % 10 ** 12
        os.ftruncate(fd, 0)
        os.pwrite(fd, ("%d\n" % n).encode(), 0)
        return n
    finally:
        os.close(fd)


def ticket_name(priority, seq, job_id, need, timeout_s):
    """A ticket's file name; sorting names sorts the queue (higher priority, then lower number)."""
    return "q-%04d-%012d-%s-%d-%d" % (1000 - priority, seq, job_id, need, min(timeout_s, 10 ** 9 - 1))


def live_tickets(qdir, mine):
    """The queue in order: (name, need, timeoutS, priority) of tickets whose waiter lives.

    Tickets before ours are checked with a try-lock (stale ones are removed where the sticky
    folder lets us, and skipped either way); ours and those behind are taken as they are."""
    try:
        names = sorted(n for n in os.listdir(qdir) if TICKET_RE.match(n))
    except OSError:
        return []
    out = []
    for name in names:
        if name < mine:
            try:
                fd = open_no_create(os.path.join(qdir, name), os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                if try_flock(fd):
                    try:
                        os.unlink(os.path.join(qdir, name))
                    except OSError:
                        pass
                    continue
            finally:
                os.close(fd)
        m = TICKET_RE.match(name)
        out.append((name, int(m.group(4)), int(m.group(5)), 1000 - int(m.group(1))))
    return out


def read_holder(path):
    """Who a .lock file says holds it (display only, bounded and type-checked), or None."""
    try:
        fd = open_no_create(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        raw = os.read(fd, HOLDER_MAX)
    finally:
        os.close(fd)
    try:
        h = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(h, dict):
        return None
    out = {}
    for k in ("job", "submitter"):
        v = h.get(k)
        out[k] = v[:200] if isinstance(v, str) else None
    for k in ("supervisorPid", "sinceMs", "timeoutS"):
        v = h.get(k)
        out[k] = v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 53 else None
    return out


def flock_held_inodes():
    """Inodes with a flock held by anyone (/proc/locks), to describe GPUs without touching their locks."""
    held = set()
    try:
        with open("/proc/locks") as f:
            for line in f:
                p = line.split()
                if len(p) >= 6 and p[1] == "FLOCK":
                    ino = p[5].split(":")[-1]
                    if ino.isdigit():
                        held.add(int(ino))
    except OSError:
        return None
    return held


def ancestors(pid, limit=64):
    """pid and its ancestors (from /proc/PID/stat, readable for any user's process)."""
    out = []
    while pid > 1 and len(out) < limit:
        out.append(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
            pid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def user_of(pid):
    try:
        uid = os.stat("/proc/%d" % pid).st_uid
    except OSError:
        return None
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def which(name):
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(folder or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def smi_query(smi, args):
    import subprocess
    try:
        p = subprocess.run([smi] + args + ["--format=csv,noheader,nounits"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if p.returncode != 0:
        return None
    return [[c.strip() for c in line.split(",")] for line in p.stdout.decode("utf-8", "replace").splitlines()
            if line.strip()]


def foreign_use(smi, threshold_mib, gpuq_pids):
    """{gpu index: (pid, user, MiB)} of the biggest process on each GPU that is not a gpuq job's
    and holds more than the threshold; None when nvidia-smi cannot be asked."""
    gpus = smi_query(smi, ["--query-gpu=index,uuid,memory.used,utilization.gpu"])
    apps = smi_query(smi, ["--query-compute-apps=pid,used_memory,gpu_uuid"])
    if gpus is None or apps is None:
        return None
    by_uuid = {}
    for row in gpus:
        if len(row) >= 2 and row[0].isdigit():
            by_uuid[row[1]] = int(row[0])
    out = {}
    for row in apps:
        if len(row) != 3 or not row[0].isdigit():
            continue
        try:
            mib = float(row[1].split()[0])
        except (ValueError, IndexError):
            continue
        pid, idx = int(row[0]), by_uuid.get(row[2])
        if idx is None or mib <= threshold_mib:
            continue
        if any(p in gpuq_pids for p in ancestors(pid)):
            continue
        if idx not in out or out[idx][2] < mib:
            out[idx] = (pid, user_of(pid), mib)
    return out


class Inotify(object):
    """inotify on one folder through ctypes; `fd` is None where it is not available."""

    def __init__(self, path, mask):
        self.fd = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                return
            if libc.inotify_add_watch(fd, path.encode(), mask) < 0:
                os.close(fd)
                return
            self.fd = fd
        except (OSError, AttributeError):
            self.fd = None

    def names(self):
        """The (mask, name) of the pending events (drained); None as a name: the queue overflowed."""
        out = []
        try:
            while True:
                buf = os.read(self.fd, 65536)
                if not buf:
                    break
                i = 0
                while i + EVENT.size <= len(buf):
                    _, mask, _, n = EVENT.unpack_from(buf, i)
                    name = buf[i + EVENT.size:i + EVENT.size + n].split(b"\0", 1)[0]
                    out.append((mask, None if mask & IN_Q_OVERFLOW else name.decode("ascii", "replace")))
                    i += EVENT.size + n
        except OSError:
            pass
        return out

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Waiter(object):
    def __init__(self, a):
        self.a = a
        self.sup = os.getppid()
        self.qdir = os.path.join(a["lock_dir"], "queue")
        self.ticket = None
        self.smi = which("nvidia-smi") if a["foreign_mib"] >= 0 else None
        self.foreign = {}
        self.foreign_at = -1e9
        self.foreign_interval = FOREIGN_MIN_INTERVAL_S
        self.last_report = None
        self.told = False
        self.holders = {}
        self.indices = set(g[0] for g in a["gpu"])

    def holder(self, index):
        """read_holder of a GPU's .lock, read again only when the file changed: opening it is a close
        event for every head's inotify, so reading it on each event would wake them for ever."""
        path = self.lock_path(index, "lock")
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        hit = self.holders.get(index)
        if hit is not None and hit[0] == key:
            return hit[1]
        h = read_holder(path)
        self.holders[index] = (key, h)
        return h

    def lock_path(self, index, kind):
        return os.path.join(self.a["lock_dir"], "gpu-%d.%s" % (index, kind))

    def enqueue(self):
        seq = next_seq(self.qdir)
        name = ticket_name(self.a["priority"], seq, self.a["job_id"], self.a["need"], self.a["timeout_s"])
        tmp = os.path.join(self.qdir, ".new-%s-%d" % (self.a["job_id"], os.getpid()))
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        os.fchmod(fd, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, os.path.join(self.qdir, name))
        self.ticket, self.ticket_fd = name, fd

    def leave(self):
        if self.ticket:
            try:
                os.unlink(os.path.join(self.qdir, self.ticket))
            except OSError:
                pass
            self.ticket = None

    def refresh_foreign(self):
        if self.smi is None or time.monotonic() - self.foreign_at < self.foreign_interval:
            return
        t0 = os.times()
        sups = set()
        for index, _, _ in self.a["gpu"]:
            h = self.holder(index)
            if h and h.get("supervisorPid"):
                sups.add(h["supervisorPid"])
        found = foreign_use(self.smi, self.a["foreign_mib"], sups)
        t1 = os.times()
        cost = (t1[2] - t0[2]) + (t1[3] - t0[3]) + (t1[0] - t0[0]) + (t1[1] - t0[1])
        self.foreign = found or {}
        # nvidia-smi is slow on a big node: its share of a core stays small (see FOREIGN_*).
        if self.foreign:
            self.foreign_interval = max(FOREIGN_MIN_INTERVAL_S, cost * 100)
        else:
            self.foreign_interval = max(FOREIGN_IDLE_INTERVAL_S, cost * 500)
        self.foreign_at = time.monotonic()

    def foreign_due(self):
        """Seconds until the next nvidia-smi check (None without nvidia-smi)."""
        if self.smi is None:
            return None
        return max(0.0, self.foreign_at + self.foreign_interval - time.monotonic())

    def try_take(self):
        """Locks NEED free GPUs (index order), or none; the indices taken, or None."""
        taken = []
        for index, lfd, hfd in self.a["gpu"]:
            if index in self.foreign:
                continue
            if not try_flock(lfd):
                continue
            if not try_flock(hfd):
                fcntl.flock(lfd, fcntl.LOCK_UN)
                continue
            taken.append((index, lfd, hfd))
            if len(taken) == self.a["need"]:
                return taken
        for _, lfd, hfd in taken:
            fcntl.flock(hfd, fcntl.LOCK_UN)
            fcntl.flock(lfd, fcntl.LOCK_UN)
        return None

    def write_holders(self, taken):
        info = {"job": self.a["job_id"], "submitter": self.a.get("submitter", "")[:200], "supervisorPid": self.sup,
                "sinceMs": now_ms(), "timeoutS": self.a["timeout_s"], "gpus": [t[0] for t in taken]}
        data = (json.dumps(info) + "\n").encode()
        for index, _, _ in taken:
            try:
                fd = open_no_create(self.lock_path(index, "lock"), os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # another account's read-only lock file: the lease holds, only the label is missing
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
            except OSError:
                pass
            finally:
                os.close(fd)

    def describe(self, tickets):
        """queue.json's content: position, the tickets ahead, and each GPU's holder."""
        pos = next((i for i, t in enumerate(tickets) if t[0] == self.ticket), len(tickets))
        ahead = tickets[:pos]
        held = flock_held_inodes()
        gpus = []
        for index, _, _ in self.a["gpu"]:
            g = {"index": index, "state": "free", "job": None, "submitter": None, "pid": None, "user": None,
                 "sinceMs": None, "timeoutS": None, "memMiB": None}
            if index in self.foreign:
                pid, user, mib = self.foreign[index]
                g.update(state="foreign", pid=pid, user=user, memMiB=round(mib, 1))
            else:
                try:
                    li = os.stat(self.lock_path(index, "lock")).st_ino
                    hi = os.stat(self.lock_path(index, "hold")).st_ino
                except OSError:
                    li = hi = None
                if held is not None and li is not None and (li in held or hi in held):
                    h = self.holder(index) or {}
                    g.update(state="held" if li in held else "orphan", job=h.get("job"),
                             submitter=h.get("submitter"), pid=h.get("supervisorPid"),
                             sinceMs=h.get("sinceMs"), timeoutS=h.get("timeoutS"))
            gpus.append(g)
        return {"version": 1, "position": pos + 1, "need": self.a["need"], "priority": self.a["priority"],
                "ahead": [{"gpus": t[1], "timeoutS": t[2], "priority": t[3]} for t in ahead[:200]],
                "aheadCount": len(ahead), "length": len(tickets), "gpus": gpus}

    def report(self, tickets):
        d = self.describe(tickets)
        if d == self.last_report:
            return
        self.last_report = d
        d = dict(d, updatedAtMs=now_ms())
        path = os.path.join(self.a["out_dir"], "queue.json")
        tmp = path + ".tmp"
        try:
            with open(tmp, "w") as f:
                f.write(json.dumps(d) + "\n")
            os.replace(tmp, path)
        except OSError:
            pass

    def alive_supervisor(self):
        return os.getppid() == self.sup

    def lock_event(self, events):
        """Whether an event is a close of one of this job's GPU lock files (or lost events)."""
        for _, name in events:
            if name is None:
                return True
            m = LOCK_NAME_RE.match(name)
            if m and int(m.group(1)) in self.indices:
                return True
        return False

    def run(self):
        self.enqueue()
        qino = Inotify(self.qdir, QUEUE_MASK)
        lino = None
        tickets, rescan, rescan_at, settle = [], True, 0.0, []
        burst_until, describe, describe_at = 0.0, True, None
        while True:
            if not self.alive_supervisor():
                self.leave()
                return 1
            mono = time.monotonic()
            if settle and mono >= settle[0]:
                settle.pop(0)
                rescan = True
            if rescan or mono >= rescan_at:
                tickets = live_tickets(self.qdir, self.ticket)
                rescan, describe = False, True
                rescan_at = mono + (IDLE_POLL_S if qino.fd is not None else IDLE_POLL_NO_INOTIFY_S)
            head = bool(tickets) and tickets[0][0] == self.ticket
            if head:
                if lino is None and qino.fd is not None:
                    lino = Inotify(self.a["lock_dir"], LOCKS_MASK)
                self.refresh_foreign()
                taken = self.try_take()
                if taken:
                    self.write_holders(taken)
                    self.leave()
                    sys.stdout.write(",".join(str(t[0]) for t in taken) + "\n")
                    sys.stdout.flush()
                    return 0
            elif lino is not None:
                lino.close()
                lino = None
            if describe_at is not None and mono >= describe_at:
                describe_at, describe = None, True
            if describe or not self.told:
                self.report(tickets)
                describe = False
            if not self.told:
                self.told = True
                try:
                    os.kill(self.sup, signal.SIGUSR2)
                except OSError:
                    pass
            # How long to sleep: until an event, or the next thing due.
            mono = time.monotonic()
            due = [rescan_at]
            if settle:
                due.append(settle[0])
            if describe_at is not None:
                due.append(describe_at)
            if head:
                if lino is None or lino.fd is None:
                    due.append(mono + HEAD_POLL_NO_INOTIFY_S)
                elif mono < burst_until:
                    due.append(mono + HEAD_RETRY_S)
                else:
                    due.append(mono + HEAD_IDLE_S)
                f = self.foreign_due()
                if f is not None:
                    due.append(mono + f)
            fds = [i.fd for i in (qino, lino) if i is not None and i.fd is not None]
            timeout = max(0.0, min(due) - mono)
            if fds:
                ready, _, _ = select.select(fds, [], [], timeout)
            else:
                time.sleep(timeout)
                ready = []
            if qino.fd in ready:
                events = qino.names()
                if any(name is None or TICKET_RE.match(name) for _, name in events):
                    rescan = True
                    # a dead waiter's ticket: its close is reported before its lock is dropped
                    if any(name is None or (mask & IN_CLOSE_WRITE) for mask, name in events):
                        settle = [time.monotonic() + d for d in SETTLE_S]
            if lino is not None and lino.fd in ready and self.lock_event(lino.names()):
                burst_until = time.monotonic() + HEAD_BURST_S
                # who holds the GPUs changed: describe now, and once the lock is surely dropped
                describe, describe_at = True, burst_until


def main(argv):
    if len(argv) < 2 or argv[1] != "wait":
        sys.stderr.write(__doc__)
        return 2
    a = parse_args(argv[2:])
    # The supervisor's death kills this waiter at once (its ticket's lock goes with it).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    w = Waiter(a)

    def on_term(signum, frame):
        w.leave()
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        rc = w.run()
    except OSError as e:
        w.leave()
        sys.stderr.write("queue.py: %s\n" % e)
        rc = 3
    # At once, without the interpreter's teardown: the supervisor starts the program when this ends.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
