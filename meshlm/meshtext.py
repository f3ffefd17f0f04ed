"""Mesh text by format name: write a mesh, check text strictly, read a model reply, convert.

The mesh format a model writes is named in its folder's ``meshlm.json`` and in its dataset's
``manifest.json`` (:mod:`meshlm.modelfolder`): ``"llama-mesh"`` (:mod:`meshlm.codec`, the
LLaMA-Mesh text, the default) or ``"parts"`` (:mod:`meshlm.parts`). Every stage that turns meshes
into text or text into meshes for a model -- the dataset builder, the engine, ``chat``,
``describe``, the evaluation, the web demo, ``encode``/``decode`` -- goes through these functions
with that name, so a parts model is shown and read parts text everywhere. docs/format.md
("Which format a model speaks") says where the name is recorded.

Needs numpy alone (the codec and the parts format).
"""

from __future__ import annotations

from meshlm.codec import Mesh, decode
from meshlm.errors import MeshFormatError
from meshlm.lenient import reply_mesh
from meshlm.parts import FORMATS, decode_parts, encode_parts, format_parts, get_format

DEFAULT = "llama-mesh"
#: The format names this meshlm reads and writes, the default first.
NAMES: tuple[str, ...] = tuple(FORMATS)


def check(fmt: str) -> str:
    """``fmt`` if it names a format; raises :class:`~meshlm.errors.MeshlmError` (one line,
    listing the names) otherwise."""
    return get_format(fmt).name


def write(mesh: Mesh, fmt: str = DEFAULT) -> str:
    """The canonical text of ``mesh`` in format ``fmt`` at ``mesh.bins``, re-normalized like
    :meth:`meshlm.codec.Mesh.encode` (so a mesh read leniently from any text comes out
    canonical). Raises :class:`~meshlm.errors.MeshError` if it collapses on the grid."""
    if check(fmt) == "parts":
        return encode_parts(mesh.vertices, mesh.faces, bins=mesh.bins)
    return mesh.encode()


def decode_strict(text: str, fmt: str = DEFAULT, bins: int = 64, source: str | None = None) -> Mesh:
    """Strict decoding of canonical ``fmt`` text (:func:`meshlm.codec.decode` or
    :func:`meshlm.parts.decode_parts` with ``strict=True``); raises
    :class:`~meshlm.errors.MeshFormatError` naming the line."""
    return get_format(fmt).decode(text, strict=True, bins=bins, source=source)


def read_reply(
    text: str,
    fmt: str = DEFAULT,
    bins: int = 64,
    *,
    cut_off: bool = False,
    source: str | None = None,
) -> Mesh:
    """The mesh in a model reply (prose, fences, flaws allowed), with ``mesh.report`` listing
    every repair and drop; ``cut_off=True`` for a reply stopped at its token limit.

    LLaMA-Mesh: :func:`meshlm.lenient.reply_mesh`, the one rule for which mesh of a reply counts
    (the one with the most faces; docs/format.md). Parts: ``decode_parts(strict=False)``, the
    parts written one after another joined into one mesh. Raises
    :class:`~meshlm.errors.NoMeshFoundError` when there is none.
    """
    if check(fmt) == "parts":
        return decode_parts(text, strict=False, bins=bins, source=source, cut_off=cut_off)
    return reply_mesh(text, bins=bins, source=source, cut_off=cut_off)


def convert(text: str, fmt: str, bins: int = 64) -> str:
    """Canonical LLaMA-Mesh ``text`` (what :func:`meshlm.codec.encode` wrote) as the same mesh in
    format ``fmt``: the text ``fmt``'s encoder gives for the mesh the LLaMA-Mesh text was made
    from (both formats keep the same vertices and wound triangles, and encoding is idempotent).
    Identity for ``"llama-mesh"``. Raises :class:`~meshlm.errors.MeshFormatError` when ``text``
    is not canonical."""
    if check(fmt) == DEFAULT:
        return text
    return format_parts(decode(text, strict=True, bins=bins))


def as_format(text: str, fmt: str, bins: int = 64) -> str:
    """Mesh text a user or a data file gave, in format ``fmt``: kept as it is when it is already
    canonical ``fmt`` text (or canonical in no known format: then it is shown as written);
    canonical text of another format is rewritten in ``fmt``."""
    try:
        decode_strict(text, fmt, bins)
        return text
    except MeshFormatError:
        pass
    for other in NAMES:
        if other == fmt:
            continue
        try:
            mesh = decode_strict(text, other, bins)
        except MeshFormatError:
            continue
        return write(mesh, fmt)
    return text
