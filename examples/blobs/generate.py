"""Makes the blobs competition's data set (deterministic: the same files every time).

    python3 examples/blobs/generate.py

Three classes of points around three centres in the plane. data/train.csv holds labelled points
(x,y,label), data/test.csv unlabelled ones (id,x,y); answers/test_labels.csv the test labels
(id,label), which only the grader sees. The files are committed; this script is how they were made.
"""

import os
import random

CENTRES = [(0.0, 0.0), (4.0, 1.0), (1.5, 4.0)]


def points(rng, n):
    out = []
    for _ in range(n):
        label = rng.randrange(len(CENTRES))
        cx, cy = CENTRES[label]
        out.append((round(rng.gauss(cx, 1.2), 4), round(rng.gauss(cy, 1.2), 4), label))
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rng = random.Random(13)
    train = points(rng, 300)
    test = points(rng, 200)
    os.makedirs(os.path.join(here, "data"), exist_ok=True)
    os.makedirs(os.path.join(here, "answers"), exist_ok=True)
    with open(os.path.join(here, "data", "train.csv"), "w") as f:
        f.write("x,y,label\n")
        f.writelines("%s,%s,%d\n" % p for p in train)
    with open(os.path.join(here, "data", "test.csv"), "w") as f:
        f.write("id,x,y\n")
        f.writelines("%d,%s,%s\n" % (i, x, y) for i, (x, y, _) in enumerate(test))
    with open(os.path.join(here, "answers", "test_labels.csv"), "w") as f:
        f.write("id,label\n")
        f.writelines("%d,%d\n" % (i, label) for i, (_, _, label) in enumerate(test))


if __name__ == "__main__":
    main()
