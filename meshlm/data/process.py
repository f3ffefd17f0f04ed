"""Per-object work, run in worker processes: load, decimate, filter, rotate, encode.

:func:`process_object` never raises for a bad object: every failure becomes a ``rejected``
record with a reason, so one broken file cannot stop a build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from meshlm.codec import encode
from meshlm.data.sources import SourceObject
from meshlm.errors import MeshError, MeshlmError, MissingDependencyError
from meshlm.files import load_mesh


@dataclass(frozen=True)
class ProcessParams:
    """What the per-object stage needs (all of it goes into the build's fingerprint)."""

    max_faces: int = 500
    min_faces: int = 1
    decimate: bool = False
    rotations: tuple[int, ...] = (0, 90, 180, 270)
    bins: int = 64
    max_file_bytes: int = 64 * 1024 * 1024


def rotate_y(vertices: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate ``(n, 3)`` vertices by ``degrees`` about the +Y (up) axis, right-handed.

    Multiples of 90 degrees use an exact integer matrix (no float noise in the result).
    """
    d = float(degrees) % 360.0
    if d % 90 == 0:
        c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][int(d // 90)]
    else:
        r = np.deg2rad(d)
        c, s = np.cos(r), np.sin(r)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=np.float64)
    return np.asarray(vertices, dtype=np.float64) @ rot.T


def reason_of(exc: BaseException) -> str:
    """Reason key for an exception: ``CorruptMeshFileError`` -> ``corrupt_mesh_file``;
    the codec's ``MeshError`` (mesh collapses on the grid) -> ``degenerate``."""
    if type(exc) is MeshError:
        return "degenerate"
    name = type(exc).__name__.removesuffix("Error") or "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _load(obj: SourceObject, params: ProcessParams):
    """``(vertices (n, 3) float64, faces (m, 3) int64)`` of the object."""
    if obj.vertices is not None and obj.faces is not None:
        return np.asarray(obj.vertices, np.float64), np.asarray(obj.faces, np.int64)

    tm = load_mesh(obj.path, max_bytes=params.max_file_bytes)
    return np.asarray(tm.vertices, np.float64), np.asarray(tm.faces, np.int64)


def _decimate(vertices: np.ndarray, faces: np.ndarray, target: int):
    import trimesh

    tm = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    out = tm.simplify_quadric_decimation(face_count=target)
    return np.asarray(out.vertices, np.float64), np.asarray(out.faces, np.int64)


def _n_faces(text: str) -> int:
    return text.count("\nf ") + text.startswith("f ")


def process_object(obj: SourceObject, params: ProcessParams) -> dict:
    """Turn one object into its checkpoint record.

    Returns ``{"id", "status": "ok", "faces", "decimated", "encodings": [[rotation, text], ...],
    "rotation_duplicates"}`` -- distinct canonical encodings in rotation order, each with at
    least ``min_faces`` faces -- or ``{"id", "status": "rejected", "reason", "detail"}`` with
    reason ``too_many_faces``, ``too_few_faces``, ``degenerate`` (collapses on the grid), a file
    error such as ``empty_mesh_file`` / ``corrupt_mesh_file`` / ``point_cloud``, or ``crash``
    for anything unexpected.
    """

    def reject(reason: str, detail: str) -> dict:
        return {"id": obj.id, "status": "rejected", "reason": reason, "detail": detail}

    try:
        vertices, faces = _load(obj, params)
        n_in, decimated = len(faces), False
        if n_in > params.max_faces:
            if not params.decimate:
                return reject("too_many_faces", f"{n_in} faces > {params.max_faces}")
            vertices, faces = _decimate(vertices, faces, params.max_faces)
            decimated = True
            if len(faces) > params.max_faces or len(faces) == 0:
                return reject(
                    "decimation_failed", f"{n_in} faces -> {len(faces)}, budget {params.max_faces}"
                )
        if len(faces) < params.min_faces:
            return reject("too_few_faces", f"{len(faces)} faces < {params.min_faces}")
        encodings: list[list] = []
        seen: set[str] = set()
        dups = 0
        for rot in params.rotations:
            text = encode(rotate_y(vertices, rot), faces, bins=params.bins)
            if _n_faces(text) < params.min_faces:
                continue
            if text in seen:
                dups += 1
                continue
            seen.add(text)
            encodings.append([int(rot), text])
        if not encodings:
            return reject("too_few_faces", f"fewer than {params.min_faces} faces on the grid")
        return {
            "id": obj.id,
            "status": "ok",
            "faces": n_in,
            "decimated": decimated,
            "encodings": encodings,
            "rotation_duplicates": dups,
        }
    except MissingDependencyError:
        raise
    except MeshlmError as exc:
        return reject(reason_of(exc), " ".join(str(exc).split())[:300])
    except Exception as exc:  # a parser bug on one file must not stop the build
        return reject("crash", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")


_PARAMS: ProcessParams | None = None


def init_worker(params: ProcessParams) -> None:
    """Pool initializer: keep the parameters in the worker (sent once, not per object)."""
    global _PARAMS
    _PARAMS = params


def process_in_worker(obj: SourceObject) -> dict:
    """Pool target: :func:`process_object` with the parameters set by :func:`init_worker`."""
    assert _PARAMS is not None, "init_worker was not called"
    return process_object(obj, _PARAMS)
