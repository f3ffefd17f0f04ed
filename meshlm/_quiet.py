"""Keep other libraries' log records and warnings off the user's terminal.

meshlm's promise on the command line: a user sees meshlm's own output and its one-line messages,
never a traceback, a library's log record (trimesh logs a full traceback when a PLY names a
texture image that is not there) or a library's warning (numpy's ``RuntimeWarning`` on huge
coordinates). :func:`install` -- called once, by the ``meshlm`` entry point -- routes them:

* records of other libraries' loggers and their warnings go to the debug log: standard error,
  formatted with their tracebacks, when ``MESHLM_DEBUG=1``; dropped otherwise;
* records of meshlm's own loggers (``meshlm.*``) at WARNING and above are printed as one line,
  ``meshlm: warning: ...``;
* :class:`MeshlmWarning` -- meshlm's notes about input it read anyway, e.g. bytes after a PLY's
  last element -- is printed as one line, ``meshlm: note: ...``.

Library code does not call this: a program that imports meshlm keeps its own logging and warning
configuration and sees :class:`MeshlmWarning` as an ordinary Python warning.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


class MeshlmWarning(UserWarning):
    """A note about an input meshlm read anyway (what it skipped or repaired); one line that
    names the file."""


def debug_enabled() -> bool:
    """True when ``MESHLM_DEBUG`` is set to anything but empty or ``0``."""
    return os.environ.get("MESHLM_DEBUG", "") not in ("", "0")


class _Router(logging.Handler):
    """meshlm's WARNING+ records as one line; other records only in debug mode, in full."""

    def __init__(self, debug: bool):
        super().__init__(logging.DEBUG)
        self.debug = debug
        self.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            ours = record.name == "meshlm" or record.name.startswith("meshlm.")
            if self.debug:
                text = self.format(record)
            elif ours and record.levelno >= logging.WARNING:
                first = record.getMessage().strip().splitlines()
                text = f"meshlm: warning: {first[0] if first else record.levelname.lower()}"
            else:
                return
            sys.stderr.write(text + "\n")
        except Exception:  # pragma: no cover - a broken stream must not end the command
            pass


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    try:
        if issubclass(category, MeshlmWarning):
            first = str(message).strip().splitlines()
            sys.stderr.write(f"meshlm: note: {first[0] if first else category.__name__}\n")
        elif debug_enabled():
            sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
    except Exception:  # pragma: no cover
        pass


_installed: _Router | None = None


def install() -> None:
    """Route log records and warnings as the module docstring says. Idempotent; reads
    ``MESHLM_DEBUG`` each time it is called."""
    global _installed
    debug = debug_enabled()
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    _installed = _Router(debug)
    root.addHandler(_installed)
    if debug:
        root.setLevel(logging.DEBUG)
    elif root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    # loggers that do not propagate and have no handler would reach Python's last-resort
    # handler, which prints to stderr
    logging.lastResort = _installed
    warnings.showwarning = _show
    if debug:
        warnings.simplefilter("default")
    else:
        # transformers gives its loggers their own stderr handler and no propagation (outside
        # CI), past the router above; its documented switch keeps their warnings off: the
        # environment variable, read when it first logs (a user's own setting stands), or, if
        # it has logged already, its setter.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        hf_logging = sys.modules.get("transformers.utils.logging")
        if hf_logging is not None and os.environ["TRANSFORMERS_VERBOSITY"] == "error":
            hf_logging.set_verbosity_error()


@contextmanager
def hf_progress_off() -> Iterator[None]:
    """transformers' own progress bars ("Loading weights", "Writing model shards", "Converting
    and de-quantizing GGUF tensors") off inside the block, as they were after it. For meshlm's
    one-time builds (a base from its GGUF, an adapter's merged copy), which show meshlm's own
    status instead; left alone when ``MESHLM_DEBUG=1`` or transformers is not installed."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        hf_logging = None
    if hf_logging is None or debug_enabled():
        yield
        return
    switch = hf_logging.is_progress_bar_enabled()
    if switch:
        hf_logging.disable_progress_bar()
    # transformers' GGUF loader calls tqdm itself, past the switch above (transformers 5.x,
    # modeling_gguf_pytorch_utils): it gets a silent one for the block.
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - a transformers without GGUF support
        gguf_utils = None
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if switch:
            hf_logging.enable_progress_bar()
        if bar is not None:
            gguf_utils.tqdm = bar
