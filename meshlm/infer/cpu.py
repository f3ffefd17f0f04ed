"""How many CPU threads a backend should use: the cores that are free now, not all of them.

llama.cpp's worker threads (and torch's OpenMP ones) wait for each other at every step of a
forward pass. When another process holds one of the cores, the thread on that core runs only
when the scheduler gives it a slice, and every other thread waits for it: on a 2-core machine
with one CPU-bound job, the bundled model took 78 s for a mesh with two threads and 5.6 s with
one (issue 18). :func:`default_threads` therefore counts the cores of this process's CPU set
that were idle over a short window (~0.1 s) and uses that many (at least one).

Sources: the ``cpu`` lines of ``/proc/stat`` (proc(5): user, nice, system, idle, iowait, irq,
softirq, steal, ... in USER_HZ ticks) and fields 14-17 of ``/proc/self/stat`` (this process's
own user/system ticks, which are left out, so a generation thread already running here does not
count as another job). Where ``/proc`` is missing (macOS, Windows) the 1-minute load average
(``os.getloadavg``) stands in, and without that every core counts as free.
"""

from __future__ import annotations

import os
import time


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity set; ``os.cpu_count()`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_ticks(cpus: set[int] | None) -> tuple[int, int] | None:
    """(busy, total) ticks summed over ``cpus`` (all when None) from /proc/stat, or None."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    busy = total = 0
    seen = False
    for line in lines:
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        vals = [int(v) for v in fields[:8]]  # guest time is already inside user/nice
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        busy += sum(vals) - idle
        total += sum(vals)
        seen = True
    return (busy, total) if seen else None


def _own_ticks() -> int:
    """This process's user + system ticks so far (all threads), 0 where unknown."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    except (OSError, IndexError, ValueError):
        return 0


def busy_cores(interval: float = 0.1) -> float | None:
    """Cores' worth of CPU time other processes used over the last ``interval`` seconds, among
    the cores this process may use (0.0 idle, 1.0 = one core fully taken), or None where
    /proc/stat cannot be read. Blocks for ``interval`` seconds."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        cpus = None
    a, own_a = _cpu_ticks(cpus), _own_ticks()
    if a is None:
        return None
    time.sleep(interval)
    b, own_b = _cpu_ticks(cpus), _own_ticks()
    if b is None or b[1] <= a[1]:
        return None
    n = len(cpus) if cpus else (os.cpu_count() or 1)
    others = max(0, (b[0] - a[0]) - (own_b - own_a))
    return n * others / (b[1] - a[1])


def threads_for(busy: float, n: int | None = None) -> int:
    """Threads to use when other processes keep ``busy`` cores' worth of the ``n`` usable cores
    busy: a core counts as taken from 0.35 of a core's use up (so a job that holds one core of
    two leaves one thread); at least 1."""
    n = n or usable_cores()
    return max(1, min(n, n - int(busy + 0.65)))


def default_threads(interval: float = 0.1) -> int:
    """Threads for a CPU backend when the user gave none: the usable cores minus those other
    processes keep busy (:func:`threads_for`). Falls back to the load average, then to all
    usable cores."""
    n = usable_cores()
    if n == 1:
        return 1
    busy = busy_cores(interval)
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            return n
    return threads_for(busy, n)


class CoreWatch:
    """Free cores counted between two calls, without waiting: each :meth:`poll` compares
    /proc/stat (and this process's own ticks) with the previous call's. For a generation that
    is already running: its own threads' time is left out, so it sees the other jobs only."""

    def __init__(self):
        try:
            self.cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):
            self.cpus = None
        self.n = usable_cores()
        self.last = (_cpu_ticks(self.cpus), _own_ticks())

    def poll(self) -> int | None:
        """Threads for the cores free since the last call, or None when that cannot be told
        (no /proc, or too little time passed for the tick counters to move)."""
        (a, own_a), now = self.last, (_cpu_ticks(self.cpus), _own_ticks())
        b, own_b = now
        if a is None or b is None or b[1] - a[1] < 10 * self.n:  # < ~0.1 s of ticks per core
            return None
        self.last = now
        others = max(0, (b[0] - a[0]) - (own_b - own_a))
        return threads_for(self.n * others / (b[1] - a[1]), self.n)
