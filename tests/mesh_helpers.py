"""Meshes shared by several test modules."""

from __future__ import annotations

import trimesh


def chair() -> trimesh.Trimesh:
    """A low-poly chair from boxes: seat, four legs, back. Y up."""
    T = trimesh.transformations.translation_matrix
    parts = [trimesh.creation.box((1.0, 0.1, 1.0), T((0, 0.5, 0)))]
    parts += [trimesh.creation.box((0.1, 0.5, 0.1), T((x, 0.25, z)))
              for x in (-0.45, 0.45) for z in (-0.45, 0.45)]
    parts.append(trimesh.creation.box((1.0, 0.8, 0.1), T((0, 0.95, -0.45))))
    return trimesh.util.concatenate(parts)
