"""Training data for mesh language models: mesh collections + captions -> mixed chat SFT data.

Public API::

    from meshlm.data import BuildConfig, build_dataset
    manifest = build_dataset(BuildConfig(out="data", meshes=["glbs/"], captions=["cap3d.csv"]))

Modules, one per stage: :mod:`~meshlm.data.sources` (folders, Objaverse, procedural shapes,
captions, general chats), :mod:`~meshlm.data.process` (load, decimate, filter, rotate, encode),
:mod:`~meshlm.data.templates` and :mod:`~meshlm.data.conversations` (chat samples),
:mod:`~meshlm.data.build` (config, checkpointed parallel processing),
:mod:`~meshlm.data.assemble` (splits, token budget, mix, output files) and
:mod:`~meshlm.data.pipeline` (``build_dataset``: the stages in order).
Needs the ``data`` extra (trimesh, datasets, tqdm, objaverse); the token budget needs
``transformers``.
"""

from meshlm.data.build import BuildConfig, BuildError
from meshlm.data.pipeline import build_dataset
from meshlm.data.sources import DataSourceError

__all__ = ["BuildConfig", "BuildError", "DataSourceError", "build_dataset"]
