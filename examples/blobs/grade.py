"""The blobs competition's grader, written to gpuq's grader contract (README, "Competitions").

    python3 grade.py SUBMISSION ANSWERS_DIR FEEDBACK_DIR

SUBMISSION is the program's submission.csv (id,label, one line per test point, a header line
first). Exit 42 with FEEDBACK_DIR/results.jsonl ({"score": accuracy, ...}) when it could be
graded; exit 43 with FEEDBACK_DIR/message.txt when the submission is invalid (the submitter's
fault). Anything else (a crash here) is the grader's fault, and gpuq says so.
"""

import json
import os
import sys


def invalid(feedback, why):
    with open(os.path.join(feedback, "message.txt"), "w") as f:
        f.write(why + "\n")
    sys.exit(43)


def main():
    submission, answers, feedback = sys.argv[1:4]
    truth = {}
    with open(os.path.join(answers, "test_labels.csv")) as f:
        next(f)
        for line in f:
            i, label = line.strip().split(",")
            truth[i] = label
    got = {}
    with open(submission, encoding="utf-8", errors="replace", newline="") as f:
        lines = f.read().splitlines()
    if not lines or lines[0].strip().lower() != "id,label":
        invalid(feedback, 'the first line must be the header "id,label"')
    for n, line in enumerate(lines[1:], start=2):
        parts = line.strip().split(",")
        if len(parts) != 2:
            invalid(feedback, "line %d: expected id,label" % n)
        if parts[0] not in truth:
            invalid(feedback, "line %d: no test point has id %r" % (n, parts[0][:20]))
        if parts[0] in got:
            invalid(feedback, "line %d: id %s given twice" % (n, parts[0]))
        got[parts[0]] = parts[1]
    missing = len(truth) - len(got)
    if missing:
        invalid(feedback, "%d of the %d test points have no label" % (missing, len(truth)))
    correct = sum(1 for i, label in truth.items() if got[i] == label)
    with open(os.path.join(feedback, "results.jsonl"), "w") as f:
        f.write(json.dumps({"score": correct / len(truth), "correct": correct, "total": len(truth)}) + "\n")
    sys.exit(42)


if __name__ == "__main__":
    main()
