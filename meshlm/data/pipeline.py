"""The whole dataset build, stage after stage: collect, process (checkpointed), assemble.

The stages live in :mod:`meshlm.data.build` (the config, collecting, the checkpointed parallel
processing) and :mod:`meshlm.data.assemble` (splits, token budget, mix, output files); this
module runs them in order and sits above both, so neither imports the other's caller
(docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable

from meshlm.data.assemble import assemble
from meshlm.data.build import CHECKPOINT, BuildConfig, collect, prepare_work, process_all


def build_dataset(cfg: BuildConfig, log: Callable[[str], None] | None = None) -> dict:
    """Run the whole build and return the manifest (also written to OUT/manifest.json).

    Resumable: rerunning with the same arguments after a kill processes only the objects that
    have no record yet and produces the same files as an uninterrupted build.
    Raises BuildError / DataSourceError for bad arguments or unreadable sources; bad objects
    never raise (they are rejected with a reason). ``log`` gets one-line progress notes.
    """
    cfg.validate()
    say = log or (lambda _m: None)
    work = prepare_work(cfg)
    col = collect(cfg)
    say(f"{len(col.objects)} objects to use, {len(col.rejects)} left out before loading")
    records = process_all(
        col.objects, cfg.process_params(), work / CHECKPOINT, cfg.workers, cfg.progress
    )
    return assemble(cfg, col, records, say)
