"""Offscreen previews of meshes: PNG, captioned grids, turntable GIFs.

Every preview uses the same fixed camera (three-quarter view: azimuth 45 deg, elevation 30 deg,
looking at the centre of the unit cube, Y up) after the mesh is centred and scaled so its longest
side is 1, so previews of different meshes are comparable. Faces are flat-shaded and coloured by
height with :func:`meshlm.files.height_colors` (the same gradient as the GLB export), on a light
background.

Backends (the ``render`` extra):

* ``"pyrender"`` -- OpenGL through EGL (Mesa's software rasterizer works without a GPU). The
  renderer is created once per thread and reused (set-up costs seconds, a frame ~0.04 s).
* ``"matplotlib"`` -- mplot3d on Agg, no OpenGL at all; painter's-algorithm depth, good enough for
  previews.
* ``"auto"`` -- pyrender, falling back to matplotlib (once and for the rest of the process) when
  pyrender or EGL is not usable.

A "mesh" is a codec ``Mesh``, a ``trimesh.Trimesh`` or a ``(vertices, faces)`` tuple.
"""

from __future__ import annotations

import logging
import math
import os
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshlm.errors import MeshError, MeshlmError, require
from meshlm.files import height_colors, mesh_arrays

log = logging.getLogger(__name__)

AZIMUTH_DEG = 45.0
ELEVATION_DEG = 30.0
FOV_DEG = 35.0
BACKGROUND = (0.96, 0.96, 0.97)
PYRENDER_LIGHTS = [1.3, 2.6, 0.1]  # headlight, key light, ambient
BACKENDS = ("auto", "pyrender", "matplotlib")

_local = threading.local()  # per-thread pyrender renderer: a GL context is current in one thread
_pyrender_broken: str | None = None  # why "auto" stopped trying pyrender in this process


class RenderError(MeshlmError):
    """No backend could render (or an unknown backend was asked for)."""


# ------------------------------------------------------------------------------------- geometry


def normalized(mesh: Any) -> tuple[np.ndarray, np.ndarray]:
    """Centre the bounding box of the used vertices at the origin and scale its longest side to 1.

    Returns ``(vertices (n, 3) float64, faces (m, 3) int64)``. Raises MeshError for a mesh with no
    faces, out-of-range indices or non-finite coordinates.
    """
    v, f = mesh_arrays(mesh)
    if len(f) == 0:
        raise MeshError("cannot render a mesh with no faces")
    if f.min() < 0 or f.max() >= len(v):
        raise MeshError(f"face index out of range (have {len(v)} vertices)")
    used = v[np.unique(f)]
    if not np.isfinite(used).all():
        raise MeshError("cannot render NaN or infinite coordinates")
    lo, hi = used.min(axis=0), used.max(axis=0)
    scale = float((hi - lo).max()) or 1.0
    return (v - (lo + hi) / 2) / scale, f


def camera_position(
    azimuth_deg: float = AZIMUTH_DEG,
    elevation_deg: float = ELEVATION_DEG,
    distance: float | None = None,
) -> np.ndarray:
    """Camera position (3,) in the Y-up world; azimuth 0 looks from +Z, 90 from +X."""
    if distance is None:  # the unit cube's bounding sphere fits the field of view
        distance = (math.sqrt(3) / 2) / math.sin(math.radians(FOV_DEG) / 2)
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return distance * np.array(
        [math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)]
    )


def _look_at(eye: np.ndarray) -> np.ndarray:
    """4x4 camera-to-world pose looking at the origin, Y up (OpenGL: camera looks down -Z)."""
    back = eye / np.linalg.norm(eye)
    right = np.cross([0.0, 1.0, 0.0], back)
    right = right / np.linalg.norm(right) if np.linalg.norm(right) > 1e-9 else np.array([1.0, 0, 0])
    up = np.cross(back, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, back, eye
    return pose


# ------------------------------------------------------------------------------------- backends


def _render_pyrender(v, f, size, azimuth, elevation) -> np.ndarray:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before the first OpenGL import
    pyrender = require("pyrender", "render", "rendering previews with pyrender")

    flat_v = v[f].reshape(-1, 3).astype(np.float32)  # un-shared: one normal and colour per face
    tris = flat_v.reshape(-1, 3, 3)
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    material = pyrender.MetallicRoughnessMaterial(
        baseColorFactor=[1.0, 1.0, 1.0, 1.0],
        metallicFactor=0.0,
        roughnessFactor=0.9,
        doubleSided=True,
        alphaMode="OPAQUE",
    )
    primitive = pyrender.Primitive(
        positions=flat_v,
        normals=np.repeat(normals, 3, axis=0).astype(np.float32),
        # pyrender's shader gamma-encodes its output: hand it linear colours
        color_0=(height_colors(flat_v).astype(np.float32) / 255.0) ** 2.2,
        indices=np.arange(len(flat_v), dtype=np.uint32).reshape(-1, 3),
        material=material,
    )
    head, key_intensity, ambient = PYRENDER_LIGHTS
    scene = pyrender.Scene(bg_color=[*map(float, BACKGROUND), 1.0], ambient_light=[ambient] * 3)
    scene.add(pyrender.Mesh([primitive]))
    eye = camera_position(azimuth, elevation)
    scene.add(
        pyrender.PerspectiveCamera(yfov=math.radians(FOV_DEG), aspectRatio=1.0), pose=_look_at(eye)
    )
    scene.add(pyrender.DirectionalLight(intensity=head), pose=_look_at(eye))
    key = camera_position(azimuth - 90, 50)
    scene.add(pyrender.DirectionalLight(intensity=key_intensity), pose=_look_at(key))

    renderer = getattr(_local, "renderer", None)
    if renderer is None:
        renderer = _local.renderer = pyrender.OffscreenRenderer(size, size)
    if (renderer.viewport_width, renderer.viewport_height) != (size, size):
        renderer.viewport_width = renderer.viewport_height = size
    color, _ = renderer.render(scene)
    return np.ascontiguousarray(color[..., :3], dtype=np.uint8)


def _render_matplotlib(v, f, size, azimuth, elevation) -> np.ndarray:
    require("matplotlib", "render", "rendering previews with matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    tris = v[f]
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    eye = camera_position(azimuth, elevation)
    key = camera_position(azimuth - 90, 50)
    # double-sided Lambert: a headlight plus a key light from above
    light = (
        0.35
        + 0.45 * np.abs(normals @ (eye / np.linalg.norm(eye)))
        + 0.3 * np.clip(np.abs(normals @ (key / np.linalg.norm(key))), 0, 1)
    )
    base = height_colors(tris.mean(axis=1))[:, :3] / 255.0
    colors = np.clip(base * light[:, None], 0, 1)

    fig = Figure(figsize=(size / 100, size / 100), dpi=100, facecolor=BACKGROUND)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1), projection="3d")
    ax.set_facecolor(BACKGROUND)
    # mplot3d is Z-up: world (x, y, z) -> plot (x, -z, y), a proper rotation
    plot = tris[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
    ax.add_collection3d(
        Poly3DCollection(plot, facecolors=colors, edgecolors=colors * 0.85, linewidths=0.2)
    )
    ax.set_xlim(-0.5, 0.5)
    ax.set_ylim(-0.5, 0.5)
    ax.set_zlim(-0.5, 0.5)
    ax.set_box_aspect((1, 1, 1), zoom=0.93)
    ax.set_proj_type("persp", focal_length=1 / math.tan(math.radians(FOV_DEG) / 2))
    ax.view_init(elev=elevation, azim=azimuth - 90)  # world azimuth 0 (+Z) is plot -Y (-90)
    ax.set_axis_off()
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba())[..., :3]
    if img.shape[:2] != (size, size):  # figure inches * dpi can round
        from PIL import Image

        img = np.asarray(Image.fromarray(img).resize((size, size)))
    return np.ascontiguousarray(img, dtype=np.uint8)


# ----------------------------------------------------------------------------------- public API


def render_array(
    mesh: Any,
    *,
    size: int = 512,
    backend: str = "auto",
    azimuth: float = AZIMUTH_DEG,
    elevation: float = ELEVATION_DEG,
) -> np.ndarray:
    """Render ``mesh`` to an image array ``(size, size, 3) uint8`` RGB.

    Raises MeshError for a mesh that cannot be drawn, RenderError for an unknown backend or when
    the chosen backend fails (``"auto"`` only fails when matplotlib does too),
    MissingDependencyError when the backend's package is not installed.
    """
    global _pyrender_broken
    if backend not in BACKENDS:
        raise RenderError(f"unknown render backend {backend!r} (choose from {', '.join(BACKENDS)})")
    v, f = normalized(mesh)
    if backend == "auto" and _pyrender_broken is None:
        try:
            return _render_pyrender(v, f, size, azimuth, elevation)
        except Exception as exc:  # no EGL, no pyrender, driver trouble: fall back for good
            _pyrender_broken = f"{type(exc).__name__}: {exc}"
            log.warning("pyrender unavailable (%s); using matplotlib previews", _pyrender_broken)
    renderer = _render_pyrender if backend == "pyrender" else _render_matplotlib
    try:
        return renderer(v, f, size, azimuth, elevation)
    except MeshlmError:
        raise
    except Exception as exc:
        raise RenderError(f"{backend} rendering failed: {type(exc).__name__}: {exc}") from exc


def render_png(
    mesh: Any, path: str | os.PathLike[str], *, size: int = 512, backend: str = "auto"
) -> Path:
    """Write a ``size`` x ``size`` PNG preview of ``mesh`` (fixed camera) to ``path``; returns it.

    Parent folders are created. Errors as :func:`render_array`.
    """
    return _save_image(render_array(mesh, size=size, backend=backend), path)


def render_grid(
    meshes: Sequence[Any],
    captions: Sequence[str],
    path: str | os.PathLike[str],
    *,
    cols: int = 4,
    size: int = 256,
    backend: str = "auto",
) -> Path:
    """One PNG with each mesh rendered at ``size`` px and its caption underneath, ``cols`` per row.

    A mesh that is ``None`` or cannot be drawn (MeshError) gets a grey "no mesh" tile, so an
    evaluation grid shows failures in place. ``captions`` must be as long as ``meshes``.
    """
    Image, ImageDraw = _pil()
    if len(captions) != len(meshes):
        raise ValueError(f"{len(meshes)} meshes but {len(captions)} captions")
    cols = max(1, min(cols, len(meshes) or 1))
    rows = max(1, math.ceil(len(meshes) / cols))
    font_px = max(10, size // 18)
    font = _font(font_px)
    chars = max(8, int(size / (font_px * 0.55)))
    band = 3 * (font_px + 4) + 6  # room for three caption lines
    bg = tuple(int(c * 255) for c in BACKGROUND)
    sheet = Image.new("RGB", (cols * size, rows * (size + band)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (mesh, caption) in enumerate(zip(meshes, captions, strict=True)):
        x, y = (i % cols) * size, (i // cols) * (size + band)
        try:
            if mesh is None:
                raise MeshError("no mesh")
            tile = Image.fromarray(render_array(mesh, size=size, backend=backend))
        except MeshError as exc:
            tile = Image.new("RGB", (size, size), (215, 215, 215))
            note = textwrap.wrap(str(exc) if mesh is None else f"cannot render: {exc}", chars)
            ImageDraw.Draw(tile).multiline_text(
                (8, 8), "\n".join(note[:4]), fill=(90, 90, 90), font=font
            )
        sheet.paste(tile, (x, y))
        draw.rectangle((x, y, x + size - 1, y + size - 1), outline=bg)
        lines = textwrap.wrap(str(caption), chars)[:3] or [""]
        if len(textwrap.wrap(str(caption), chars)) > 3:
            lines[-1] = lines[-1][: chars - 1] + "…"
        for k, line in enumerate(lines):
            draw.text((x + 4, y + size + 3 + k * (font_px + 4)), line, fill=(30, 30, 30), font=font)
    return _save_image(np.asarray(sheet), path)


def render_turntable_gif(
    mesh: Any,
    path: str | os.PathLike[str],
    *,
    frames: int = 24,
    size: int = 256,
    backend: str = "auto",
    duration_ms: int = 80,
) -> Path:
    """An animated GIF turning ``mesh`` once around the Y axis at the preview elevation."""
    Image, _ = _pil()
    images = [
        Image.fromarray(
            render_array(mesh, size=size, backend=backend, azimuth=AZIMUTH_DEG + 360.0 * k / frames)
        )
        for k in range(frames)
    ]
    p = _prepare(path)
    images[0].save(p, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return p


# -------------------------------------------------------------------------------------- helpers


def _pil():
    require("PIL", "render", "writing preview images")
    from PIL import Image, ImageDraw

    return Image, ImageDraw


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError):  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _prepare(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _save_image(img: np.ndarray, path: str | os.PathLike[str]) -> Path:
    Image, _ = _pil()
    p = _prepare(path)
    Image.fromarray(img).save(p, format="PNG")
    return p
