"""Fingerprints of competition folders (data, answers) on a node, for `gpuq competitions check` and
for each grading (issue 13): "the dataset changed between two runs" must be visible.

    python3 fingerprint.py [--cache FILE] DIR...

prints one JSON object on stdout: {DIR: {"fingerprint": "sha256:<hex>" | null, "files": N,
"bytes": B, "error": null | "why"}}. The fingerprint hashes the sorted list of (relative path, kind,
size, content SHA-256) of everything under DIR; symbolic links are recorded with their target, never
followed; FIFOs, sockets and devices are recorded by kind, never opened. Contents are hashed once: the
cache maps (device, inode, size, mtime_ns) to the file's SHA-256, so a check of an unchanged 10 GB data
set reads no file. The cache is advisory (a damaged one is ignored and rewritten) and written
atomically. Exit 0 unless the arguments are wrong (2).
"""

import hashlib
import json
import os
import stat
import sys

MAX_ENTRIES = 1_000_000
CACHE_MAX_ENTRIES = 2_000_000


def load_cache(path):
    """The cache as a dict, or an empty one when it is missing or damaged."""
    if not path:
        return {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = json.loads(f.read(256 * 1024 * 1024).decode("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)


def save_cache(path, cache):
    """Writes the cache atomically (a temp file renamed over it); a failure only costs speed."""
    if not path or len(cache) > CACHE_MAX_ENTRIES:
        return
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def file_sha256(path, st, cache):
    """The SHA-256 of a regular file's content, from the cache when its identity is unchanged."""
    key = "%d:%d:%d:%d" % (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    hit = cache.get(key)
    if isinstance(hit, str) and len(hit) == 64:
        return hit
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file any more")
        while True:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                break
            h.update(chunk)
    finally:
        os.close(fd)
    digest = h.hexdigest()
    cache[key] = digest
    return digest


def entries(root):
    """(relative path, lstat) of everything under root, sorted, without following any link."""
    out = []
    stack = [""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else root
        with os.scandir(full) as it:
            for e in it:
                r = os.path.join(rel, e.name) if rel else e.name
                st = e.stat(follow_symlinks=False)
                out.append((r, st))
                if len(out) > MAX_ENTRIES:
                    raise OSError("more than %d entries" % MAX_ENTRIES)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(r)
    out.sort(key=lambda x: x[0].encode("utf-8", "surrogateescape"))
    return out


def fingerprint(root, cache):
    """The folder's fingerprint record (see the module's doc)."""
    try:
        st = os.stat(root)
    except OSError as e:
        return {"fingerprint": None, "files": 0, "bytes": 0, "error": "%s: %s" % (root, e.strerror)}
    if not stat.S_ISDIR(st.st_mode):
        return {"fingerprint": None, "files": 0, "bytes": 0, "error": "%s is not a folder" % root}
    h = hashlib.sha256()
    files = 0
    total = 0
    try:
        for rel, st in entries(root):
            name = rel.encode("utf-8", "surrogateescape")
            mode = st.st_mode
            if stat.S_ISREG(mode):
                digest = file_sha256(os.path.join(root, rel), st, cache)
                line = b"f\0%s\0%d\0%s\n" % (name, st.st_size, digest.encode())
                files += 1
                total += st.st_size
            elif stat.S_ISDIR(mode):
                line = b"d\0%s\n" % name
            elif stat.S_ISLNK(mode):
                target = os.readlink(os.path.join(root, rel)).encode("utf-8", "surrogateescape")
                line = b"l\0%s\0%s\n" % (name, target)
            else:
                line = b"o\0%s\0%o\n" % (name, stat.S_IFMT(mode))
            h.update(line)
    except OSError as e:
        return {"fingerprint": None, "files": files, "bytes": total, "error": "%s: %s" % (root, e.strerror or e)}
    return {"fingerprint": "sha256:" + h.hexdigest(), "files": files, "bytes": total, "error": None}


def main(argv):
    cache_path = None
    dirs = []
    i = 0
    while i < len(argv):
        if argv[i] == "--cache" and i + 1 < len(argv):
            cache_path = argv[i + 1]
            i += 2
            continue
        dirs.append(argv[i])
        i += 1
    if not dirs:
        sys.stderr.write("usage: fingerprint.py [--cache FILE] DIR...\n")
        return 2
    cache = load_cache(cache_path)
    before = len(cache)
    result = {d: fingerprint(d, cache) for d in dirs}
    if len(cache) != before:
        save_cache(cache_path, cache)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
