"""A solution for the blobs competition: nearest centroid, standard library only.

Reads the data set from $GPUQ_DATA (train.csv, test.csv), writes submission.csv (id,label) in
its working folder, where gpuq's grader looks for it.
"""

import csv
import os

data = os.environ["GPUQ_DATA"]
sums = {}
with open(os.path.join(data, "train.csv")) as f:
    for row in csv.DictReader(f):
        s = sums.setdefault(row["label"], [0.0, 0.0, 0])
        s[0] += float(row["x"])
        s[1] += float(row["y"])
        s[2] += 1
centres = {label: (sx / n, sy / n) for label, (sx, sy, n) in sums.items()}
print("centres:", {k: tuple(round(c, 2) for c in v) for k, v in sorted(centres.items())})

with open(os.path.join(data, "test.csv")) as f, open("submission.csv", "w") as out:
    out.write("id,label\n")
    for row in csv.DictReader(f):
        x, y = float(row["x"]), float(row["y"])
        best = min(centres, key=lambda k: (centres[k][0] - x) ** 2 + (centres[k][1] - y) ** 2)
        out.write("%s,%s\n" % (row["id"], best))
print("wrote submission.csv")
