"""Time to the demo mesh on an idle machine and with a CPU-bound job on one core (issue 18).

`make demo`'s request ("a wooden table with four legs", the bundled model, its default decoding:
greedy, so every run writes the same mesh) is timed from ``load()`` to the finished mesh, in one
process, for two thread settings:

* old: one llama.cpp thread per usable core (meshlm's default before issue 18; baseline);
* new: meshlm's default now (the cores other processes leave free, :mod:`meshlm.infer.cpu`).

Each setting runs idle and then with ``--hogs`` background processes that spin on the CPU
(``python -c 'while True: pass'``), interleaved, each run in a fresh process (as ``make demo``
is), ``--n`` times for the new default and ``--n-old`` times for the old one (which can take
minutes); a run past ``--limit`` seconds is stopped and counted as the limit (a lower bound).
Medians and the ratios busy/idle are printed. Target: new default busy <= 2x idle. The machine's
load and its busiest processes are printed first: "idle" means "without the extra job".

    python benchmarks/busy.py [--n 3] [--n-old 1] [--hogs 1] [--limit 600] [--model X.gguf]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

PROMPT = "a wooden table with four legs"  # the Makefile's demo


def machine_state() -> str:
    """Load averages and the five busiest processes (ps), as printed lines."""
    lines = [f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    try:
        ps = subprocess.run(
            ["ps", "-eo", "pcpu,etime,comm", "--sort=-pcpu"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
        lines += ["busiest processes (%CPU over their lifetime, elapsed, command):"]
        lines += ["  " + ln.strip() for ln in ps[1:6]]
    except (OSError, subprocess.SubprocessError):
        pass
    return "\n".join(lines)


def time_demo(model: str | None, threads: int | None, limit: float) -> tuple[float, str, str]:
    """(seconds from load to the finished mesh, threads llama.cpp used, faces) in a child
    process; past ``limit`` seconds the child is stopped and ``limit`` returned ("?", "?")."""
    code = (
        "import sys, time\n"
        "from meshlm.infer import load\n"
        "t0 = time.perf_counter()\n"
        f"e = load({model!r}, threads={threads!r})\n"
        f"r = e.generate({PROMPT!r})\n"
        "print(time.perf_counter() - t0, e.backend.llm.n_threads, r.stats.faces)\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=limit, check=True
        ).stdout.split()
    except subprocess.TimeoutExpired:
        return limit, "?", "?"
    return float(out[-3]), out[-2], out[-1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="runs of the new default per condition")
    ap.add_argument("--n-old", type=int, default=1, help="runs of the old setting per condition")
    ap.add_argument("--limit", type=float, default=600, help="seconds before a run is stopped")
    ap.add_argument("--hogs", type=int, default=1, help="CPU-bound background processes")
    ap.add_argument("--model", default=None, help="a .gguf (default: the bundled model's)")
    args = ap.parse_args(argv)

    from meshlm.infer.cpu import usable_cores

    cores = usable_cores()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.processor() or ''}"
        f" {platform.machine()}, {cores} usable cores, Python {platform.python_version()}"
    )
    print(machine_state())
    settings = {"old (threads = all cores)": cores, "new default": None}
    times: dict[tuple[str, str], list[float]] = {}
    used: dict[tuple[str, str], set[str]] = {}
    for cond in ("idle", "busy"):
        hogs = []
        if cond == "busy":
            hogs = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(args.hogs)
            ]
            time.sleep(1.0)
        try:
            for k in range(max(args.n, args.n_old)):
                for name, threads in settings.items():
                    if k >= (args.n if threads is None else args.n_old):
                        continue
                    s, t, faces = time_demo(args.model, threads, args.limit)
                    times.setdefault((name, cond), []).append(s)
                    used.setdefault((name, cond), set()).add(t)
                    print(
                        f"  {cond:4s} {name:26s} {s:7.2f} s  threads {t}  faces {faces}", flush=True
                    )
        finally:
            for h in hogs:
                h.kill()
                h.wait()
    print(f"\n| setting | threads idle / busy | idle s | busy ({args.hogs} hog) s | busy/idle |")
    print("|---|---|---|---|---|")
    for name in settings:
        idle = statistics.median(times[(name, "idle")])
        busy = statistics.median(times[(name, "busy")])
        ti = "/".join(map(str, sorted(used[(name, "idle")])))
        tb = "/".join(map(str, sorted(used[(name, "busy")])))
        print(f"| {name} | {ti} / {tb} | {idle:.2f} | {busy:.2f} | {busy / idle:.1f}x |")
    old_b = statistics.median(times[("old (threads = all cores)", "busy")])
    new_b = statistics.median(times[("new default", "busy")])
    new_i = statistics.median(times[("new default", "idle")])
    print(
        f"\nnew default, busy vs old, busy: {old_b / new_b:.1f}x faster; "
        f"new busy/idle {new_b / new_i:.2f} (target <= 2)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
