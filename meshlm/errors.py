"""Typed exceptions shared by every meshlm module.

The library raises these; the CLI turns them into one-line messages and exit codes.
Every class derives from :class:`MeshlmError`, so ``except MeshlmError`` catches all of them.
"""

from __future__ import annotations


class MeshlmError(Exception):
    """Base class of every error meshlm raises on purpose."""


class MeshFormatError(MeshlmError, ValueError):
    """Text is not valid mesh text.

    Attributes
    ----------
    line : int | None
        1-based line number in the text where the problem is (``None`` if not tied to a line).
    problem : str
        What is wrong, in a few words.
    """

    def __init__(self, problem: str, line: int | None = None, source: str | None = None):
        self.problem = problem
        self.line = line
        self.source = source
        where = source or "<text>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {problem}")


class NoMeshFoundError(MeshFormatError):
    """The lenient decoder found no mesh (no vertex and face lines) in the text."""


class MeshError(MeshlmError, ValueError):
    """Mesh arrays that cannot be encoded (wrong shapes, non-finite, degenerate, empty)."""


class MissingDependencyError(MeshlmError, ImportError):
    """An optional dependency (an extra) is needed for this feature and is not installed."""

    def __init__(self, package: str, extra: str, feature: str):
        self.package = package
        self.extra = extra
        super().__init__(f"{feature} needs the '{package}' package: pip install 'meshlm[{extra}]'")


def require(module: str, extra: str, feature: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError(module.split(".")[0], extra, feature) from exc
