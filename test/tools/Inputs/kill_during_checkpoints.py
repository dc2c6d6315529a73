"""Kills a training run (SIGKILL) while it checkpoints every step, several
times at different moments, and checks after each kill that the checkpoint
on disk is complete: it loads and training resumes from it."""
import os
import signal
import subprocess
import sys
import time

moe_run, plan, data, checkpoint = sys.argv[1:]
for attempt, delay in enumerate([0.4, 0.7, 1.1]):
    proc = subprocess.Popen([moe_run, plan, "--data", data, "--steps", "100000",
                             "--save", checkpoint, "--checkpoint-every", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not os.path.exists(checkpoint):
        continue
    resumed = subprocess.run([moe_run, plan, "--data", data, "--steps", "1",
                              "--resume", checkpoint], capture_output=True, text=True)
    if resumed.returncode != 0:
        sys.exit(f"attempt {attempt}: the checkpoint left by a killed run does not load:\n"
                 + resumed.stderr)
print("checkpoints intact after", attempt + 1, "kills:", os.path.exists(checkpoint))
