"""meshlm: language models that speak 3D meshes.

The codec needs numpy alone::

    from meshlm import encode, decode
    text = encode(vertices, faces)          # canonical LLaMA-Mesh text
    mesh = decode(text)                     # strict: MeshFormatError names the line
    mesh = decode(reply, strict=False)      # lenient: mesh.report lists every repair
                                            # (of several meshes, the one with most faces)
"""

from meshlm.codec import (
    DEFAULT_BINS,
    Mesh,
    RepairReport,
    canonicalize,
    dequantize,
    encode,
    quantize,
)
from meshlm.errors import (
    MeshError,
    MeshFormatError,
    MeshlmError,
    MissingDependencyError,
    NoMeshFoundError,
)
from meshlm.lenient import decode, decode_all, reply_mesh

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BINS",
    "Mesh",
    "MeshError",
    "MeshFormatError",
    "MeshlmError",
    "MissingDependencyError",
    "NoMeshFoundError",
    "RepairReport",
    "__version__",
    "canonicalize",
    "decode",
    "decode_all",
    "dequantize",
    "encode",
    "quantize",
    "reply_mesh",
]
