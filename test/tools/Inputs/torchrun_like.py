"""Starts N copies of a command the way torchrun does: RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT in each one's
environment. Waits for all, prints each one's stderr prefixed with its rank,
and exits with the largest exit status.

    torchrun_like.py N command args...
"""
import os
import socket
import subprocess
import sys


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    n, command = int(sys.argv[1]), sys.argv[2:]
    port = str(free_port())
    ranks = []
    for rank in range(n):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(n), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        ranks.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
    status = 0
    for rank, process in enumerate(ranks):
        _, err = process.communicate(timeout=120)
        for line in err.splitlines():
            print(f"[rank {rank}] {line}")
        status = max(status, process.returncode)
    sys.exit(status)


if __name__ == "__main__":
    main()
