# gpuq unpack: writes the files of an upload stream (src/core/file-frames.ts) into ./work of the
# job folder it runs in, before the job starts. Run as: python3 -I -c SCRIPT MAX_TOTAL_BYTES.
# Never follows a link, never writes outside ./work whatever the stream says (each name is
# checked as src/core/file-names.ts checks it, folders are opened with O_NOFOLLOW one part at a
# time, files created with O_EXCL), and refuses more than MAX_TOTAL_BYTES. Writes the list of
# uploaded files to ./uploads.json (for `gpuq get`) and prints "ok FILES BYTES".
import json, os, re, sys

BAD = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029\\\\\ufffd\ud800-\udfff]')


def fail(msg):
    sys.stderr.write('gpuq unpack: %s\n' % msg)
    sys.exit(3)


def check(name):
    if not isinstance(name, str) or name == '' or name.startswith('/') or BAD.search(name):
        fail('unsafe name %s' % json.dumps(name))
    if len(name.encode('utf-8')) > 1024 or name.count('/') >= 32:
        fail('name too long %s' % json.dumps(name))
    parts = name.split('/')
    for p in parts:
        if p in ('', '.', '..') or len(p.encode('utf-8')) > 255:
            fail('unsafe name %s' % json.dumps(name))
    return parts


NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def open_dir(root, parts, create):
    fd = os.dup(root)
    for p in parts:
        if create:
            try:
                os.mkdir(p, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
        try:
            nfd = os.open(p, NOFOLLOW_DIR, dir_fd=fd)
        except OSError as e:
            os.close(fd)
            fail('cannot open folder %s: %s' % (json.dumps(p), e.strerror))
        os.close(fd)
        fd = nfd
    return fd


def main():
    limit = int(sys.argv[1])
    src = sys.stdin.buffer
    root = os.open('work', NOFOLLOW_DIR)
    total = 0
    names = []
    while True:
        line = src.readline(16 * 1024 + 1)
        if not line.endswith(b'\n'):
            fail('the upload stream ended early or has a malformed header')
        h = json.loads(line.decode('utf-8'))
        if 'end' in h:
            if h['end'] != len(names):
                fail('the upload stream lost files')
            break
        if 'd' in h:
            os.close(open_dir(root, check(h['d']), True))
            continue
        parts = check(h.get('f'))
        size = h.get('s')
        if not isinstance(size, int) or size < 0:
            fail('a malformed size')
        total += size
        if total > limit:
            fail('the upload is larger than its limit of %d bytes' % limit)
        d = open_dir(root, parts[:-1], True)
        mode = 0o700 if h.get('x') == 1 else 0o600
        try:
            fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=d)
        except OSError as e:
            fail('cannot create %s: %s' % (json.dumps(h['f']), e.strerror))
        finally:
            os.close(d)
        left = size
        with os.fdopen(fd, 'wb') as out:
            while left > 0:
                b = src.read(min(left, 1 << 20))
                if not b:
                    fail('the upload stream ended inside %s' % json.dumps(h['f']))
                out.write(b)
                left -= len(b)
        names.append(h['f'])
    if src.read(1):
        fail('data after the end of the upload stream')
    fd = os.open('uploads.json', os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, 'w') as f:
        json.dump(names, f)
    print('ok %d %d' % (len(names), total))


main()
