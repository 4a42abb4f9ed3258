"""A small training job for the tour: logistic regression on synthetic data, pure Python.

CPU-friendly (no GPU, no packages): a stand-in for your own training script. It reads the
options `gpuq submit --arg` passes (`--epochs N`, `--lr X`) and the seed `--env SEED=7` sets,
prints one line per epoch, and writes `model.json` in its working folder.
"""
import argparse
import json
import math
import os
import random

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--lr", type=float, default=0.5)
args = parser.parse_args()

seed = int(os.environ.get("SEED", "0"))
rng = random.Random(seed)
features = 8
true_w = [rng.uniform(-2, 2) for _ in range(features)]
data = []
for _ in range(4000):
    x = [rng.gauss(0, 1) for _ in range(features)]
    y = 1 if sum(w * v for w, v in zip(true_w, x)) + rng.gauss(0, 0.5) > 0 else 0
    data.append((x, y))

print("seed", seed, "| epochs", args.epochs, "| CUDA_VISIBLE_DEVICES =", os.environ.get("CUDA_VISIBLE_DEVICES", "(not set)"))
w = [0.0] * features
for epoch in range(1, args.epochs + 1):
    loss, correct = 0.0, 0
    grad = [0.0] * features
    for x, y in data:
        z = sum(a * b for a, b in zip(w, x))
        p = min(max(1 / (1 + math.exp(-max(-30.0, min(30.0, z)))), 1e-12), 1 - 1e-12)
        loss -= math.log(p if y else 1 - p)
        correct += (p > 0.5) == (y == 1)
        for i in range(features):
            grad[i] += (p - y) * x[i]
    w = [a - args.lr * g / len(data) for a, g in zip(w, grad)]
    print(f"epoch {epoch}/{args.epochs}  loss {loss / len(data):.4f}  accuracy {correct / len(data):.3f}")

with open("model.json", "w") as f:
    json.dump({"seed": seed, "epochs": args.epochs, "weights": w}, f)
print("wrote model.json")
