"""Meshes shared by several test modules."""

from __future__ import annotations

import numpy as np


def chair():
    """A low-poly chair from boxes: seat, four legs, back. Y up. (a ``trimesh.Trimesh``)"""
    import trimesh  # here, so that the codec's tests need numpy alone

    T = trimesh.transformations.translation_matrix
    parts = [trimesh.creation.box((1.0, 0.1, 1.0), T((0, 0.5, 0)))]
    parts += [
        trimesh.creation.box((0.1, 0.5, 0.1), T((x, 0.25, z)))
        for x in (-0.45, 0.45)
        for z in (-0.45, 0.45)
    ]
    parts.append(trimesh.creation.box((1.0, 0.8, 0.1), T((0, 0.95, -0.45))))
    return trimesh.util.concatenate(parts)


def cube() -> tuple[np.ndarray, np.ndarray]:
    """The unit cube: (8, 3) float64 corners at 0/1 and (12, 3) outward 0-based triangles."""
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    f = np.array(
        [
            [0, 1, 3],
            [0, 3, 2],
            [4, 6, 7],
            [4, 7, 5],
            [0, 4, 5],
            [0, 5, 1],
            [2, 3, 7],
            [2, 7, 6],
            [0, 2, 6],
            [0, 6, 4],
            [1, 5, 7],
            [1, 7, 3],
        ]
    )
    return v, f
