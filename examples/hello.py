"""A first job: prints a greeting and what gpuq gave it."""
import os
import sys

print("hello from gpuq job", os.environ.get("GPUQ_JOB_ID"))
print("python", sys.version.split()[0], "| threads", os.environ.get("OMP_NUM_THREADS"))
print("CUDA_VISIBLE_DEVICES =", os.environ.get("CUDA_VISIBLE_DEVICES", "(not set)"))
