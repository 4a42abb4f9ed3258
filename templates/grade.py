"""The grading step of a job (issue 13; the contract's "Competitions and the grader").

    python3 grade.py [--fresh] [--job-dir DIR] --submission REL [--data DIR] [--answers DIR]
                     --timeout-s S --memory-bytes B --output-bytes B --max-submission-bytes B
                     [--docker JSON] -- GRADER...

Run by the supervisor (templates/wrapper.sh) once the program exited 0 and its processes are gone,
and by `gpuq grade` for a regrade, in the job's folder, as the node account (the operator's code;
never the program's per-job uid). It makes the next `gradings/N/` (never overwriting one), checks
the submission `work/REL` without following any link, copies it to `gradings/N/submission`,
fingerprints the data and answers folders (templates/fingerprint.py, cached under
`<workdir>/.cache/fingerprints.json`), runs `GRADER... SUBMISSION ANSWERS_DIR FEEDBACK_DIR` in its
own session under its limits (wall clock: TERM, then KILL 2 s later; memory: the summed RSS of its
processes, checked every 50 ms; output: stdout.log + stderr.log), kills whatever it left, and
writes `gradings/N/status.json` (atomically). The client judges that file and the feedback
(src/core/grading.ts): this script decides nothing but what it measured.

`--docker JSON` (a job under `--isolation docker`; src/core/docker-args.ts graderDockerArgs):
{"command": [...], "image": ..., "name": ..., "keep": bool, "options": [...]}. The grader then runs
in a fresh container (`docker run OPTIONS -- IMAGE GRADER... /gpuq/submission /gpuq/answers
/gpuq/feedback`, the options' @GPUQ_...@ tokens filled in here): its memory is the container's
--memory (OOMKilled from `docker inspect` is the memory kill), its timeout stops the container
(`docker kill` TERM, then KILL), and the container is removed after (kept with "keep"). Its user
is the node account, or where gpuq runs as root an account without privilege that can read the
answers (grader_user: nobody, or their owner; root without capabilities only for answers only root
may read), which owns the copy of the submission and the feedback folder.

`--fresh` (the supervisor's first grading): whatever the job left under `gradings` is removed first
(without a boundary the program could have planted a grading there). Prints N on stdout; exit 0
when a status.json was written, 2 on bad arguments, 1 when no grading folder could be made.
"""

import ctypes
import hashlib
import importlib.util
import json
import os
import signal
import stat
import subprocess
import sys
import time

KILL_GRACE_S = 2.0
POLL_S = 0.05
CHUNK = 1024 * 1024
SAMPLE_BYTES = 64 * 1024  # head of the submission sniffed for the encoding and CRLF records


def now_ms():
    return int(time.time() * 1000)


def parse_args(argv):
    opts = {
        "fresh": False,
        "job_dir": ".",
        "submission": None,
        "data": "",
        "answers": "",
        "timeout_s": None,
        "memory_bytes": None,
        "output_bytes": None,
        "max_submission_bytes": None,
        "docker": None,
    }
    names = {
        "--job-dir": "job_dir",
        "--submission": "submission",
        "--data": "data",
        "--answers": "answers",
        "--timeout-s": "timeout_s",
        "--memory-bytes": "memory_bytes",
        "--output-bytes": "output_bytes",
        "--max-submission-bytes": "max_submission_bytes",
        "--docker": "docker",
    }
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            opts["grader"] = argv[i + 1 :]
            break
        if a == "--fresh":
            opts["fresh"] = True
            i += 1
            continue
        if a in names and i + 1 < len(argv):
            opts[names[a]] = argv[i + 1]
            i += 2
            continue
        raise ValueError("unknown argument %r" % a)
    if not opts.get("grader"):
        raise ValueError("no grader command after --")
    for k in ("timeout_s", "memory_bytes", "output_bytes", "max_submission_bytes"):
        if opts[k] is None:
            raise ValueError("--%s is required" % k.replace("_", "-"))
        opts[k] = float(opts[k]) if k == "timeout_s" else int(opts[k])
    if opts["docker"] is not None:
        d = json.loads(opts["docker"])
        ok = isinstance(d, dict) and isinstance(d.get("image"), str) and isinstance(d.get("name"), str)
        for k in ("command", "options"):
            ok = ok and isinstance(d.get(k), list) and all(isinstance(a, str) for a in d[k])
        if not ok or not d["command"]:
            raise ValueError("--docker is not a container description")
        opts["docker"] = d
    rel = opts["submission"]
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in rel.split("/")):
        raise ValueError("--submission must be a relative path without . or .. parts")
    return opts


def expand(path):
    """A node path as the config gives it ("~/" is the node account's home); "" stays ""."""
    return os.path.expanduser(path) if path else ""


# --- the grading folder


def remove_entry(dir_fd, name):
    """Removes NAME in DIR_FD whatever it is, never following a link."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        try:
            for e in os.listdir(fd):
                remove_entry(fd, e)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def open_gradings(job_fd, fresh):
    """The job's gradings/ folder as a descriptor (made 0700; cleared first with `fresh`)."""
    if fresh:
        remove_entry(job_fd, "gradings")
    try:
        os.mkdir("gradings", 0o700, dir_fd=job_fd)
    except FileExistsError:
        pass
    return os.open("gradings", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=job_fd)


def next_grading(gfd):
    """Makes the next gradings/N (1, 2, ...) and returns N: mkdir is atomic, so two gradings at
    once get different numbers."""
    taken = [int(n) for n in os.listdir(gfd) if n.isdigit() and len(n) < 9]
    n = max(taken, default=0) + 1
    while True:
        try:
            os.mkdir(str(n), 0o700, dir_fd=gfd)
            return n
        except FileExistsError:
            n += 1


def write_json(dir_fd, name, value):
    """Writes NAME in DIR_FD atomically (temp file + rename), never through a link."""
    tmp = "%s.tmp" % name
    try:
        os.unlink(tmp, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(value, separators=(",", ":")) + "\n")
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


# --- the submission check


def check_submission(job_fd, rel, max_bytes, nfd):
    """Checks work/REL and copies it to `submission` in NFD. Never follows a link on the path:
    every folder is opened O_NOFOLLOW|O_DIRECTORY from the one before, the file O_NOFOLLOW and
    O_NONBLOCK (a FIFO swapped in cannot block). Returns the record for status.json."""
    rec = {"status": "ok", "reason": None, "bytes": None, "sha256": None, "crlf": None, "encoding": None}

    def bad(status, reason):
        rec["status"] = status
        rec["reason"] = reason
        return rec

    parts = ["work"] + rel.split("/")
    fds = []
    try:
        cur = job_fd
        for i, part in enumerate(parts[:-1]):
            shown = "/".join(parts[1 : i + 1]) or "the working folder"
            try:
                st = os.stat(part, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                return bad("missing", "%s does not exist" % shown)
            if stat.S_ISLNK(st.st_mode):
                return bad("invalid", "%s is a symbolic link (links are never followed)" % shown)
            if not stat.S_ISDIR(st.st_mode):
                return bad("invalid", "%s is not a folder" % shown)
            try:
                cur = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=cur)
            except OSError as e:
                return bad("invalid", "%s cannot be opened (%s)" % (shown, e.strerror))
            fds.append(cur)
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=cur, follow_symlinks=False)
        except FileNotFoundError:
            return bad("missing", "the program wrote no %s" % rel)
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            return bad("invalid", "%s is a symbolic link, not a file (links are never followed)" % rel)
        if stat.S_ISDIR(mode):
            return bad("invalid", "%s is a folder, not a file" % rel)
        if not stat.S_ISREG(mode):
            return bad("invalid", "%s is not a regular file (a FIFO, socket or device)" % rel)
        if st.st_nlink > 1:
            return bad("invalid", "%s is a hard link to another file" % rel)
        if st.st_size > max_bytes:
            rec["bytes"] = st.st_size
            return bad("invalid", "%s is %d bytes, over the competition's cap of %d" % (rel, st.st_size, max_bytes))
        try:
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=cur)
        except OSError as e:
            return bad("invalid", "%s cannot be opened (%s)" % (rel, e.strerror))
        fds.append(src)
        fst = os.fstat(src)
        if not stat.S_ISREG(fst.st_mode) or fst.st_ino != st.st_ino or fst.st_dev != st.st_dev:
            return bad("invalid", "%s changed while it was checked" % rel)
        dst = os.open("submission", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=nfd)
        h = hashlib.sha256()
        total = 0
        crlf = False
        prev_cr = False
        decoder = __import__("codecs").getincrementaldecoder("utf-8")()
        utf8 = True
        with os.fdopen(dst, "wb") as out:
            while True:
                chunk = os.read(src, CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    rec["bytes"] = total
                    return bad("invalid", "%s grew over the competition's cap of %d bytes" % (rel, max_bytes))
                h.update(chunk)
                out.write(chunk)
                if not crlf and (b"\r\n" in chunk or (prev_cr and chunk[:1] == b"\n")):
                    crlf = True
                prev_cr = chunk[-1:] == b"\r"
                if utf8:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        utf8 = False
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
        rec.update(bytes=total, sha256=h.hexdigest(), crlf=crlf, encoding="utf-8" if utf8 else "binary")
        return rec
    finally:
        for fd in fds:
            os.close(fd)


# --- fingerprints


def fingerprints(job_dir, dirs):
    """{dir: fingerprint or None} by templates/fingerprint.py (imported: no second python start),
    cached in <workdir>/.cache/fingerprints.json (the job folder is <workdir>/jobs/<id>)."""
    out = {d: None for d in dirs}
    wanted = [d for d in dirs if d]
    if not wanted:
        return out
    here = os.path.dirname(os.path.abspath(__file__))
    sys.dont_write_bytecode = True
    try:
        spec = importlib.util.spec_from_file_location("gpuq_fingerprint", os.path.join(here, "fingerprint.py"))
        fp = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fp)
    except (OSError, ImportError, SyntaxError):
        return out
    cache_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(job_dir))), ".cache", "fingerprints.json")
    cache = fp.load_cache(cache_path)
    before = len(cache)
    for d in wanted:
        out[d] = fp.fingerprint(d, cache).get("fingerprint")
    if len(cache) != before:
        fp.save_cache(cache_path, cache)
    return out


# --- running the grader


def become_subreaper():
    """Orphans of the grader (double-forked, setsid'd) are re-parented here, so the sweep finds them."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except Exception:
        return False


def children(pid):
    """The children of PID (every thread's), from /proc/PID/task/*/children."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid), "rb") as f:
                out.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def tree(root):
    """{pid: (rss_bytes, state)} of the processes below ROOT: read from the children lists, so a
    check costs a few reads however many processes the node runs."""
    page = os.sysconf("SC_PAGE_SIZE")
    out = {}
    stack = children(root)
    while stack and len(out) < 100_000:
        pid = stack.pop()
        if pid in out:
            continue
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                st = f.read()
            rest = st[st.rfind(b")") + 2 :].split()
            out[pid] = (int(rest[21]) * page, rest[0])
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(children(pid))
    return out


def sweep(me):
    """Kills every process left below this one (SIGKILL), reaping them; returns how many there were."""
    killed = set()
    for _ in range(50):
        alive = [p for p, (_rss, st) in tree(me).items() if st != b"Z"]
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
                killed.add(p)
            except OSError:
                pass
        reap()
        if not alive:
            break
        time.sleep(0.02)
    return len(killed)


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def file_size(dir_fd, name):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_size
    except OSError:
        return 0


# --- the grader in a container (--docker)

CONTAINER_PATHS = ("/gpuq/submission", "/gpuq/answers", "/gpuq/feedback")


def docker_call(d, args):
    """Runs `docker ARGS` (the node's docker command), quietly; (exit code, stdout) or (None, "")."""
    try:
        r = subprocess.run(
            d["command"] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60
        )
        return r.returncode, r.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return None, ""


NOBODY = 65534
ANSWERS_WALK_MAX = 10000  # entries looked at to choose the grader's user; past it, as if unreadable


def answers_readers(top):
    """Who can read everything under the answers folder TOP (links are not followed, nor looked
    at: inside the container they lead nowhere on the host): (others, owner) where others says
    every entry is readable (folders searchable) by any account, and owner is the (uid, gid) of
    TOP when one non-root account owns every entry and may read it, else None. (False, None) past
    ANSWERS_WALK_MAX entries or on any error."""
    try:
        st = os.lstat(top)
    except OSError:
        return False, None
    if not stat.S_ISDIR(st.st_mode):
        return False, None
    others, owner_ok, n = True, st.st_uid != 0, 0
    stack = [top]
    while stack and (others or owner_ok):
        path = stack.pop()
        try:
            names = os.listdir(path)
            entries = [(path, os.lstat(path))] if path == top else []
            entries += [(os.path.join(path, name), os.lstat(os.path.join(path, name))) for name in names]
        except OSError:
            return False, None
        for p, e in entries:
            n += 1
            if n > ANSWERS_WALK_MAX:
                return False, None
            if stat.S_ISLNK(e.st_mode):
                continue
            is_dir = stat.S_ISDIR(e.st_mode)
            need_o, need_u = (0o005, 0o500) if is_dir else (0o004, 0o400)
            others = others and e.st_mode & need_o == need_o
            owner_ok = owner_ok and e.st_uid == st.st_uid and e.st_mode & need_u == need_u
            if is_dir and p != top:
                stack.append(p)
    return others, ((st.st_uid, st.st_gid) if owner_ok else None)


def grader_user(answers):
    """The grader container's user and group. The node account where gpuq runs as one; as root,
    an account without privilege that can still read the answers (the mount is read-only and
    cannot change who may read them): nobody (65534) when everyone may read them (or there are
    none), else the one non-root account that owns them all, else root with every capability
    dropped (answers only root may read)."""
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        return uid, gid
    if not answers:
        return NOBODY, NOBODY
    others, owner = answers_readers(answers)
    if others:
        return NOBODY, NOBODY
    return owner if owner is not None else (0, 0)


def docker_argv(d, ndir, job_dir, grader, answers, user):
    """`docker run` of the grader: the options with the node's values filled in, then the command."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    tokens = {
        "@GPUQ_GRADING@": ndir,
        "@GPUQ_WORK@": os.path.join(job_dir, "work"),
        "@GPUQ_HOME@": os.path.expanduser("~"),
        "@GPUQ_UID@": str(user[0]),
        "@GPUQ_GID@": str(user[1]),
        "@GPUQ_CPUS@": "%d.00" % cores,
        "@GPUQ_THREADS@": str(cores),
        "@GPUQ_GPUS@": "",
    }
    opts = []
    for a in d["options"]:
        for k, v in tokens.items():
            a = a.replace(k, v)
        opts.append(a)
    paths = [CONTAINER_PATHS[0], CONTAINER_PATHS[1] if answers else "", CONTAINER_PATHS[2]]
    return d["command"] + ["run"] + opts + ["--", d["image"]] + list(grader) + paths


def end_container(d, nfd, state):
    """After the `docker run` client ended: the container's exit and OOMKilled (the memory kill),
    then its removal (unless kept). No container: Docker could not start it (stderr.log says why)."""
    code, out = docker_call(d, ["inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", d["name"]])
    parts = out.split()
    # A container that never started reads ExitCode 0 under Podman: the client's own 125-127
    # (the engine's error, cannot run, not found) then say it did not start.
    if parts[:1] == ["0"] and state["exitCode"] in (125, 126, 127):
        parts = []
    if code == 0 and len(parts) == 2 and parts[0].isdigit():
        exit_code = int(parts[0])
        state["exitCode"] = exit_code
        state["signal"] = exit_code - 128 if 128 < exit_code < 160 else None
        if parts[1] == "true":
            state["memoryKilled"] = True
    elif state["error"] is None and not state["timedOut"] and not state["outputOverflow"]:
        state["error"] = "the grader's container did not start (docker run exited %s): %s" % (
            state["exitCode"],
            last_line(nfd, "stderr.log") or "no message",
        )
    if not d.get("keep"):
        docker_call(d, ["rm", "-f", d["name"]])


def last_line(dir_fd, name):
    """The last non-empty line of a log (its last 4 KiB), for an error message."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        try:
            size = os.fstat(fd).st_size
            os.lseek(fd, max(0, size - 4096), 0)
            text = os.read(fd, 4096).decode("utf-8", "replace")
        finally:
            os.close(fd)
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def kill_all(pgid, pids):
    """SIGKILL to the grader's process group and to every process of its tree (`pids`)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def run_grader(opts, nfd, ndir, sub_path, answers, state):
    """Runs the grader under its limits; fills STATE (exit, signal, timedOut, memoryKilled,
    outputOverflow, peakRssBytes, leftovers, error)."""
    os.mkdir("feedback", 0o700, dir_fd=nfd)
    feedback = os.path.join(ndir, "feedback")
    out_fd = os.open("stdout.log", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=nfd)
    err_fd = os.open("stderr.log", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=nfd)
    d = opts["docker"]
    if d is not None:
        # A container of the same name left by an earlier grading (kept, or its grade.py killed).
        docker_call(d, ["rm", "-f", d["name"]])
        # The grader's user (grader_user) owns the copy of the submission and the feedback folder
        # (both still 0600/0700): it reads the one and writes the other; nobody else may.
        user = grader_user(answers)
        if user != (os.getuid(), os.getgid()):
            try:
                for name in ("submission", "feedback"):
                    os.chown(name, user[0], user[1], dir_fd=nfd, follow_symlinks=False)
            except OSError:
                user = (os.getuid(), os.getgid())
        argv = docker_argv(d, ndir, os.path.dirname(os.path.dirname(ndir)), opts["grader"], answers, user)
    else:
        argv = list(opts["grader"]) + [sub_path, answers, feedback]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUQ_")}
    if opts["data"]:
        env["GPUQ_DATA"] = opts["data"]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out_fd,
            stderr=err_fd,
            cwd=ndir,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as e:
        state["error"] = "cannot start the grader %s: %s" % (argv[0], e.strerror or e)
        os.close(out_fd)
        os.close(err_fd)
        return
    os.close(out_fd)
    os.close(err_fd)
    me = os.getpid()
    start = time.monotonic()
    deadline = start + opts["timeout_s"]
    killed_at = None
    peak = 0
    code = None
    last_kill = 0.0
    while True:
        code = proc.poll()
        if code is not None:
            break
        t = time.monotonic()
        table = tree(me)
        rss = sum(r for r, _st in table.values())
        peak = max(peak, rss)
        why = None
        if d is not None:
            # The container's cgroup holds the grader's memory (--memory); its client is all here.
            if file_size(nfd, "stdout.log") + file_size(nfd, "stderr.log") > opts["output_bytes"]:
                state["outputOverflow"] = True
                killed_at = killed_at if killed_at is not None else t - KILL_GRACE_S
            elif t >= deadline and killed_at is None:
                state["timedOut"] = True
                docker_call(d, ["kill", "--signal", "TERM", d["name"]])
                killed_at = t
            # KILL after the grace, asked again (a container Docker was still starting) until its client ends.
            if killed_at is not None and t >= killed_at + KILL_GRACE_S and t >= last_kill + 0.5:
                docker_call(d, ["kill", "--signal", "KILL", d["name"]])
                last_kill = t
            try:
                proc.wait(POLL_S)
            except subprocess.TimeoutExpired:
                pass
            continue
        if rss > opts["memory_bytes"]:
            state["memoryKilled"] = True
            why = "memory"
        elif file_size(nfd, "stdout.log") + file_size(nfd, "stderr.log") > opts["output_bytes"]:
            state["outputOverflow"] = True
            why = "output"
        elif t >= deadline and killed_at is None:
            state["timedOut"] = True
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
            killed_at = t
        if why is not None:
            kill_all(proc.pid, table)
        if killed_at is not None and t >= killed_at + KILL_GRACE_S:
            kill_all(proc.pid, table)
        try:
            proc.wait(POLL_S)  # returns as soon as the grader ends
        except subprocess.TimeoutExpired:
            pass
    if code < 0:
        state["signal"] = -code
        state["exitCode"] = 128 - code
    else:
        state["exitCode"] = code
    state["peakRssBytes"] = peak if d is None else None
    if d is not None:
        end_container(d, nfd, state)
    state["leftovers"] = sweep(me)
    # the logs stay within the cap whatever was written between two checks
    for name in ("stdout.log", "stderr.log"):
        try:
            fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW, dir_fd=nfd)
            try:
                if os.fstat(fd).st_size > opts["output_bytes"]:
                    os.ftruncate(fd, opts["output_bytes"])
            finally:
                os.close(fd)
        except OSError:
            pass


def stop_container(opts):
    """A grading stopped early: its container (if any) is killed, and removed unless kept."""
    d = opts["docker"]
    if d is not None:
        docker_call(d, ["kill", d["name"]] if d.get("keep") else ["rm", "-f", d["name"]])


def main(argv):
    try:
        opts = parse_args(argv)
    except ValueError as e:
        sys.stderr.write("grade.py: %s\n" % e)
        return 2
    opts["data"] = expand(opts["data"])
    opts["answers"] = expand(opts["answers"])
    job_dir = os.path.abspath(opts["job_dir"])
    terminated = []

    def on_term(signum, _frame):
        terminated.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    os.umask(0o077)
    become_subreaper()
    try:
        job_fd = os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY)
        gfd = open_gradings(job_fd, opts["fresh"])
        n = next_grading(gfd)
        nfd = os.open(str(n), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=gfd)
    except OSError as e:
        sys.stderr.write("grade.py: cannot make the grading folder under %s: %s\n" % (job_dir, e.strerror or e))
        return 1
    ndir = os.path.join(job_dir, "gradings", str(n))
    state = {
        "version": 1,
        "state": "running",
        "number": n,
        "startedAtMs": now_ms(),
        "endedAtMs": None,
        "exitCode": None,
        "signal": None,
        "timedOut": False,
        "memoryKilled": False,
        "outputOverflow": False,
        "cancelled": False,
        "peakRssBytes": None,
        "leftovers": 0,
        "error": None,
        "submission": None,
        "submissionName": opts["submission"],
        "dataFingerprint": None,
        "answersFingerprint": None,
        "limits": {
            "timeoutS": opts["timeout_s"],
            "memoryBytes": opts["memory_bytes"],
            "outputBytes": opts["output_bytes"],
            "maxSubmissionBytes": opts["max_submission_bytes"],
        },
        "grader": opts["grader"],
    }
    sys.stdout.write("%d\n" % n)
    sys.stdout.flush()
    try:
        write_json(nfd, "status.json", state)
        state["submission"] = check_submission(job_fd, opts["submission"], opts["max_submission_bytes"], nfd)
        fps = fingerprints(job_dir, [opts["data"], opts["answers"]])
        state["dataFingerprint"] = fps.get(opts["data"]) if opts["data"] else None
        state["answersFingerprint"] = fps.get(opts["answers"]) if opts["answers"] else None
        if state["submission"]["status"] == "ok":
            run_grader(opts, nfd, ndir, os.path.join(ndir, "submission"), opts["answers"], state)
    except KeyboardInterrupt:
        state["cancelled"] = True
        state["leftovers"] = sweep(os.getpid())
        stop_container(opts)
    except OSError as e:
        state["error"] = "grading step failed: %s" % (e.strerror or e)
        state["leftovers"] = sweep(os.getpid())
        stop_container(opts)
    state["state"] = "done"
    state["endedAtMs"] = now_ms()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    write_json(nfd, "status.json", state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
