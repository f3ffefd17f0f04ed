"""The two records of the shapes package: :class:`Family` and :class:`ShapeSample`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from meshlm.shapes.geometry import Part


@dataclass(frozen=True)
class Family:
    """One family of procedural objects.

    Attributes
    ----------
    name : str
        Family label, e.g. ``"table"`` (also the prefix of sample uids).
    build : Callable[[np.random.Generator], tuple[Part, dict]]
        Draws parameters from the generator and returns the part (``(n, 3) float64`` vertices,
        ``(m, 3) int64`` faces, Y up, any placement) and the parameters as a JSON-able dict.
    describe : Callable[[dict, np.random.Generator], str]
        Caption for the given parameters; wording varies with the generator.
    solid : bool
        True if every sample is one watertight solid without self-intersection. False means an
        *assembly of closed parts*: still watertight edge-wise, but parts may overlap.
    group : str
        Coarse category for documentation ("primitive", "furniture", ...).
    """

    name: str
    build: Callable[[np.random.Generator], tuple[Part, dict]]
    describe: Callable[[dict, np.random.Generator], str]
    solid: bool = False
    group: str = "object"


@dataclass
class ShapeSample:
    """A generated, captioned object.

    Attributes
    ----------
    mesh : trimesh.Trimesh
        Y-up mesh standing on y = 0, centred on X and Z, at most 500 faces, closed.
    caption : str
        Natural-language description derived from ``params``.
    family : str
        Family label.
    params : dict
        The parameters the shape was built from (numbers, booleans, short strings).
    uid : str
        Deterministic identifier, ``<family>_<seed>_<index>`` when made by ``generate``.
    """

    mesh: object
    caption: str
    family: str
    params: dict = field(default_factory=dict)
    uid: str = ""

    @property
    def vertices(self) -> np.ndarray:
        """``(n, 3) float64`` vertex positions."""
        return np.asarray(self.mesh.vertices)

    @property
    def faces(self) -> np.ndarray:
        """``(m, 3) int64`` 0-based triangle indices."""
        return np.asarray(self.mesh.faces)
