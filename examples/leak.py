"""A job that keeps allocating memory, for the tour: run it with a small --memory and gpuq stops
it (verdict oom, exit 12) before it hurts anything else on the machine."""
import time

held = []
for step in range(1, 161):  # at most 8 GiB, in case no limit were enforced
    held.append(bytearray(50 * 1024 * 1024))  # zero-filled, so the pages are really used
    print(f"holding {step * 50} MiB", flush=True)
    time.sleep(0.05)
print("the memory limit never fired")
