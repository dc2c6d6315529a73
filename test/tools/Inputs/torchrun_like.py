"""Starts N copies of a command the way torchrun does: RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR=127.0.0.1 and MASTER_PORT in each one's environment,
with MASTER_PORT held by a listening socket meanwhile (torchrun's own store
listens there). Waits for all, prints each one's stderr prefixed with its
rank, and exits with the largest exit status.

    torchrun_like.py N command args...
"""
import os
import socket
import subprocess
import sys


def held_port():
    """A listening socket on a port whose successor is free too."""
    while True:
        store = socket.socket()
        store.bind(("127.0.0.1", 0))
        store.listen()
        port = store.getsockname()[1]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
                return store, port
            except OSError:
                store.close()


def main():
    n, command = int(sys.argv[1]), sys.argv[2:]
    store, number = held_port()
    port = str(number)
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
    store.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
