# gpuq collect: writes files of ./work of the job folder it runs in as a frame stream
# (src/core/file-frames.ts) on stdout, for `gpuq get` (and `gpuq results --out`). Run as:
#   python3 -I -c SCRIPT [--root=REL] MAX_FILE_BYTES MAX_TOTAL_BYTES ENTRY_NAME [PATH...]
# Without PATHs: every regular file the job created (not ENTRY_NAME, not those in ./uploads.json).
# --root=REL reads the folder REL of the job folder instead of work (e.g. gradings/2, opened one
# part at a time without following a link); exit 5 when it is not there (4: no work folder).
# The job wrote these files: nothing is followed (folders opened with O_NOFOLLOW one part at a
# time, files with O_NOFOLLOW|O_NONBLOCK and checked to be regular after opening), names that
# src/core/file-names.ts would refuse are left out, and so is whatever is over a limit; each
# thing left out is a {"skip"} record saying why.
import errno, json, os, re, stat, sys

out = sys.stdout.buffer
BAD = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029\\\\\ufffd\ud800-\udfff]')
NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
MAX_ENTRIES = 200000
MAX_DEPTH = 32
args = sys.argv[1:]
root_rel = 'work'
if args and args[0].startswith('--root='):
    root_rel = args[0][len('--root='):]
    args = args[1:]
max_file = int(args[0])
max_total = int(args[1])
entry = args[2]
paths = args[3:]
st = {'total': 0, 'files': 0, 'seen': 0}


def rec(o):
    out.write((json.dumps(o) + '\n').encode('ascii'))


def problem(name):
    if name == '' or name.startswith('/') or BAD.search(name):
        return 'an unsafe name'
    if len(name.encode('utf-8', 'surrogateescape')) > 1024 or name.count('/') >= MAX_DEPTH:
        return 'a name too long'
    for p in name.split('/'):
        if p in ('', '.', '..') or len(p.encode('utf-8')) > 255:
            return 'an unsafe name'
    return None


def uploaded():
    names = set([entry]) if entry else set()
    try:
        fd = os.open('uploads.json', os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return names
    with os.fdopen(fd, 'rb') as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return names
        data = f.read(16 * 1024 * 1024 + 1)
    try:
        v = json.loads(data.decode('utf-8'))
        if isinstance(v, list):
            names.update(n for n in v if isinstance(n, str))
    except ValueError:
        pass
    return names


def send_file(dfd, name, rel):
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
    except OSError as e:
        rec({'skip': rel, 'why': 'a symbolic link' if e.errno == errno.ELOOP else 'unreadable (%s)' % e.strerror})
        return
    with os.fdopen(fd, 'rb', buffering=0) as f:
        s = os.fstat(fd)
        if not stat.S_ISREG(s.st_mode):
            rec({'skip': rel, 'why': 'not a regular file'})
            return
        size = s.st_size
        if size > max_file:
            rec({'skip': rel, 'why': 'over the per-file limit (%d bytes)' % size})
            return
        if st['total'] + size > max_total:
            rec({'skip': rel, 'why': 'over the total limit'})
            return
        st['total'] += size
        st['files'] += 1
        rec({'f': rel, 's': size, 'x': 1 if s.st_mode & 0o100 else 0})
        left = size
        # The kernel copies the file to stdout (sendfile), where it can; else read and write.
        out.flush()
        pos = 0
        while left > 0:
            try:
                n = os.sendfile(1, fd, pos, min(left, 1 << 24))
            except OSError:
                break
            if n <= 0:
                break
            pos += n
            left -= n
        if left > 0:
            os.lseek(fd, pos, os.SEEK_SET)
        while left > 0:
            b = f.read(min(left, 1 << 20))
            if not b:
                break
            out.write(b)
            left -= len(b)
        if left > 0:
            out.write(b'\0' * left)
            rec({'skip': rel, 'why': 'shrank while being read (the copy is padded with zeros)'})


def walk(dfd, prefix, depth, explicit, exclude):
    try:
        entries = sorted(os.scandir(dfd), key=lambda e: e.name)
    except OSError as e:
        rec({'skip': prefix, 'why': 'unreadable folder (%s)' % e.strerror})
        return
    for e in entries:
        st['seen'] += 1
        rel = prefix + e.name
        if st['seen'] > MAX_ENTRIES:
            rec({'skip': rel, 'why': 'more than %d entries in the folder' % MAX_ENTRIES})
            return
        why = problem(rel)
        if why:
            rec({'skip': rel, 'why': why})
        elif e.is_symlink():
            rec({'skip': rel, 'why': 'a symbolic link'})
        elif e.is_dir(follow_symlinks=False):
            if depth >= MAX_DEPTH:
                rec({'skip': rel, 'why': 'nested too deep'})
                continue
            try:
                nfd = os.open(e.name, NOFOLLOW_DIR, dir_fd=dfd)
            except OSError as err:
                rec({'skip': rel, 'why': 'unreadable folder (%s)' % err.strerror})
                continue
            try:
                walk(nfd, rel + '/', depth + 1, explicit, exclude)
            finally:
                os.close(nfd)
        elif e.is_file(follow_symlinks=False):
            if explicit or rel not in exclude:
                send_file(dfd, e.name, rel)
        else:
            rec({'skip': rel, 'why': 'not a regular file'})


def one_path(root, path):
    why = problem(path)
    if why:
        rec({'skip': path, 'why': why})
        return
    parts = path.split('/')
    fd = os.dup(root)
    try:
        for p in parts[:-1]:
            try:
                nfd = os.open(p, NOFOLLOW_DIR, dir_fd=fd)
            except OSError:
                rec({'missing': path})
                return
            os.close(fd)
            fd = nfd
        try:
            s = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except OSError:
            rec({'missing': path})
            return
        if stat.S_ISLNK(s.st_mode):
            rec({'skip': path, 'why': 'a symbolic link'})
        elif stat.S_ISDIR(s.st_mode):
            try:
                nfd = os.open(parts[-1], NOFOLLOW_DIR, dir_fd=fd)
            except OSError as err:
                rec({'skip': path, 'why': 'unreadable folder (%s)' % err.strerror})
                return
            try:
                walk(nfd, path + '/', len(parts), True, set())
            finally:
                os.close(nfd)
        elif stat.S_ISREG(s.st_mode):
            send_file(fd, parts[-1], path)
        else:
            rec({'skip': path, 'why': 'not a regular file'})
    finally:
        os.close(fd)


def open_root(rel):
    """The folder REL of the job folder, opened one part at a time, following no link."""
    if problem(rel):
        raise OSError(errno.EINVAL, 'an unsafe folder name')
    fd = os.open('.', NOFOLLOW_DIR)
    try:
        for p in rel.split('/'):
            nfd = os.open(p, NOFOLLOW_DIR, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except OSError:
        os.close(fd)
        raise
    return fd


def main():
    try:
        root = open_root(root_rel)
    except OSError as e:
        if root_rel == 'work':
            sys.stderr.write('gpuq collect: the job has no working folder (%s)\n' % e.strerror)
            sys.exit(4)
        sys.stderr.write('gpuq collect: the job folder has no folder %s (%s)\n' % (root_rel, e.strerror))
        sys.exit(5)
    if paths:
        for p in paths:
            one_path(root, p)
    else:
        walk(root, '', 0, False, uploaded())
    rec({'end': st['files']})
    out.flush()


main()
