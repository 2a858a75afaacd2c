"""The fuzz tests' child process (see sandbox.py): reads pickled requests on stdin, runs
them (targets.py) and writes the pickled outcome back. Started by the Sandbox."""
import os
import pickle
import resource
import struct
import sys

import numpy as np

import fastmlp
import targets


def serve(requests, answers, workdir):
    send(answers, b"ready...")
    while True:
        header = requests.read(8)
        if len(header) < 8:
            return
        target, args = pickle.loads(requests.read(struct.unpack("<Q", header)[0]))
        answer = pickle.dumps(targets.run(workdir, target, *args))
        send(answers, struct.pack("<Q", len(answer)) + answer)


def send(answers, data):
    answers.write(data)
    answers.flush()


def limit_memory(budget):
    """RLIMIT_AS: what the process maps now (imports done) plus ``budget`` bytes. Not under
    AddressSanitizer, whose shadow memory needs terabytes of address space."""
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        return
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (mapped + budget, mapped + budget))


def main():
    budget, workdir = int(sys.argv[1]), sys.argv[2]
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into the answers
    fastmlp.Network([np.eye(2)], None, "relu")(np.ones((64, 2)))  # starts the thread pool
    limit_memory(budget)
    serve(sys.stdin.buffer, answers, workdir)


if __name__ == "__main__":
    main()
