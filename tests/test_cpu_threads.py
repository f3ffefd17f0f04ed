"""Default thread counts on a busy machine (issue 18): the cores other processes hold are left to
them. The machine running the tests may itself be busy, so the checks hold whatever else runs:
with one more CPU-bound process, at least one core less is used."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from meshlm.infer import cpu


@pytest.fixture
def hog():
    """A CPU-bound background process (``while True: pass``) for the length of a test."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    yield proc
    proc.kill()
    proc.wait()


def test_default_threads_stay_within_the_usable_cores():
    n = cpu.usable_cores()
    assert n == len(os.sched_getaffinity(0))
    assert 1 <= cpu.default_threads() <= n
    busy = cpu.busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= n + 0.5


@pytest.mark.skipif(cpu.usable_cores() < 2, reason="needs two cores")
def test_a_cpu_bound_process_takes_a_core_away(hog):
    busy = cpu.busy_cores(0.2)
    assert busy is not None and busy >= 0.8  # the hog alone is most of a core
    assert cpu.default_threads() <= cpu.usable_cores() - 1


def test_this_process_own_work_is_not_counted(monkeypatch):
    """Time this process spends (here: a spinning thread) is subtracted from the busy time."""
    ticks = iter([(100, 1000), (300, 1200)])  # 200 busy ticks out of 200 on all cores
    own = iter([50, 250])  # ... all of them this process's own
    monkeypatch.setattr(cpu, "_cpu_ticks", lambda cpus: next(ticks))
    monkeypatch.setattr(cpu, "_own_ticks", lambda: next(own))
    assert cpu.busy_cores(0.0) == 0.0


def test_without_proc_stat_the_load_average_decides(monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 4)
    monkeypatch.setattr(cpu, "busy_cores", lambda interval=0.1: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.2, 0.0, 0.0))
    assert cpu.default_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert cpu.default_threads() == 1  # never below one
    monkeypatch.setattr(cpu, "busy_cores", lambda interval=0.1: 0.3)
    assert cpu.default_threads() == 4  # a third of a core in use: still free
    monkeypatch.setattr(cpu, "busy_cores", lambda interval=0.1: 0.4)
    assert cpu.default_threads() == 3


def test_torch_threads_follow_the_same_default(monkeypatch):
    torch = pytest.importorskip("torch")
    from meshlm.infer.hf import set_torch_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(cpu, "busy_cores", lambda interval=0.1: 0.0)  # an idle machine
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert set_torch_threads() == cpu.usable_cores() == torch.get_num_threads()
        assert set_torch_threads(1) == 1 == torch.get_num_threads()  # --threads wins
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(2)
        assert set_torch_threads() == 2  # the user's OpenMP setting is left alone
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(cpu.usable_cores() < 2, reason="needs two cores")
def test_core_watch_sees_a_job_that_starts_between_two_looks():
    watch = cpu.CoreWatch()
    assert watch.poll() is None  # no time has passed: nothing to tell yet
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.6)
        assert watch.poll() <= cpu.usable_cores() - 1
    finally:
        proc.kill()
        proc.wait()
