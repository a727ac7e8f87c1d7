"""The event loop's iterations per poll, by cause, from an strace of the running gateway.

Take the trace during a `bench/cpu_per_poll.py` run (or any `sitewatch run` polling RTU nodes):

    strace -f -tt -e trace=epoll_wait,read,write,ioctl,futex,epoll_ctl -p GATEWAY_PID -o TRACE  (a few seconds)
    python bench/loop_wakes.py TRACE GATEWAY_PID

Each `epoll_wait` of the main thread (GATEWAY_PID is also its thread id) is one iteration of the event
loop. Classified: a zero timeout (callbacks were ready: a hop, such as a task resumed by a future the last
iteration completed), a timer (it slept and returned nothing), a worker thread's result (the loop's
self-pipe, fd 6 in `sitewatch run`: pass another with --self-pipe), and a port (any other fd). Polls are
the requests written (8-byte `write` calls that return 8). Kernel wake-ups that did not end the wait
(n_tty waking the loop's thread at a byte while VMIN is not reached) do not show here: the thread's
voluntary context switches (`bench/cpu_per_poll.py` prints them) count those too.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

RESULT = re.compile(r"\[(.*)\], \d+, (-?\d+)\) = (\d+)")
REQUEST = re.compile(r"write\(\d+, .*, 8\) = 8")


def classify(lines: list[str], pid: str, self_pipe: int) -> tuple[int, Counter[str]]:
    main = [line for line in lines if line.startswith(pid + " ")]
    polls = sum(1 for line in main if REQUEST.search(line))
    causes: Counter[str] = Counter()
    for line in main:
        if "epoll_wait" not in line or "<unfinished" in line:
            continue  # an unfinished call is counted at its "resumed" line
        match = RESULT.search(line)
        if match is None:
            continue
        events, timeout, ready = match.group(1), int(match.group(2)), int(match.group(3))
        if timeout == 0:
            causes["no sleep: callbacks were ready (a hop)"] += 1
        elif ready == 0:
            causes["timer"] += 1
        elif f"u32={self_pipe}," in events:
            causes["a worker thread's result (self-pipe)"] += 1
        else:
            causes["a port"] += 1
    return polls, causes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("pid")
    parser.add_argument("--self-pipe", type=int, default=6)
    args = parser.parse_args()
    polls, causes = classify(args.trace.read_text().splitlines(), args.pid, args.self_pipe)
    if not polls:
        print("no requests in the trace (is PID the gateway's?)")
        return 1
    print(f"{polls} polls; event loop iterations per poll:")
    for cause, count in causes.most_common():
        print(f"  {count / polls:5.2f}  {cause}")
    slept = sum(count for cause, count in causes.items() if not cause.startswith("no sleep"))
    print(f"  {sum(causes.values()) / polls:5.2f}  in all, {slept / polls:.2f} of them after a sleep")
    return 0


if __name__ == "__main__":
    sys.exit(main())
