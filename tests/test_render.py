"""meshlm.render: both backends draw a recognizable, correctly sized, non-blank preview."""

from __future__ import annotations

import threading

import numpy as np
import pytest

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from mesh_helpers import chair  # noqa: E402,F401

from meshlm import render  # noqa: E402
from meshlm.errors import MeshError  # noqa: E402
from meshlm.render import (  # noqa: E402
    BACKGROUND,
    RenderError,
    render_array,
    render_grid,
    render_png,
    render_turntable_gif,
)


@pytest.fixture(scope="module")
def pyrender_ok():
    """Skip pyrender tests where pyrender or an EGL/OpenGL driver is missing."""
    pytest.importorskip("pyrender")
    try:
        render_array(trimesh.creation.box(), size=32, backend="pyrender")
    except RenderError as exc:
        pytest.skip(f"pyrender cannot render here: {exc}")


def foreground(img: np.ndarray) -> np.ndarray:
    bg = np.array(BACKGROUND) * 255
    return np.abs(img.astype(float) - bg).max(axis=2) > 12


def check_png(path, size):
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (size, size, 3)
    assert img.std() > 20, "image is (nearly) blank"
    assert np.abs(img[0, 0].astype(float) - np.array(BACKGROUND) * 255).max() < 4  # light bg
    fg = foreground(img)
    assert 0.05 < fg.mean() < 0.8  # the object fills a sensible part of the frame
    assert len(np.unique(img[fg].reshape(-1, 3), axis=0)) > 20  # shaded and coloured, not flat
    return img


@pytest.mark.parametrize("backend", ["pyrender", "matplotlib"])
def test_png_of_requested_size_and_not_blank(tmp_path, backend, request):
    if backend == "pyrender":
        request.getfixturevalue("pyrender_ok")
    path = render_png(chair(), tmp_path / "sub" / f"chair_{backend}.png", size=160, backend=backend)
    img = check_png(path, 160)
    # height gradient: the top of the object is redder than the bottom
    rows = np.nonzero(foreground(img).any(axis=1))[0]
    top = img[rows[0] + 3][foreground(img)[rows[0] + 3]].mean(axis=0)
    bottom = img[rows[-1] - 3][foreground(img)[rows[-1] - 3]].mean(axis=0)
    assert top[0] - top[2] > bottom[0] - bottom[2]


def test_backends_use_the_same_camera(pyrender_ok):
    mesh = chair()
    a = foreground(render_array(mesh, size=128, backend="pyrender"))
    b = foreground(render_array(mesh, size=128, backend="matplotlib"))
    iou = (a & b).sum() / (a | b).sum()
    assert iou > 0.75, f"silhouettes differ (IoU {iou:.2f})"


def test_auto_backend_and_inputs(tmp_path):
    box = trimesh.creation.box((2.0, 1.0, 0.5))
    a = render_array(box, size=64)
    b = render_array((box.vertices * 10 + 3, box.faces), size=64)  # normalized to the unit cube
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_codec_mesh_renders(tmp_path):
    import meshlm.codec as codec  # a broken codec fails here, it does not skip

    mesh = codec.decode(codec.encode(chair().vertices, chair().faces))
    check_png(render_png(mesh, tmp_path / "m.png", size=96, backend="matplotlib"), 96)


def test_errors():
    with pytest.raises(RenderError, match="unknown render backend"):
        render_array(chair(), backend="blender")
    with pytest.raises(MeshError, match="no faces"):
        render_array((np.zeros((3, 3)), np.zeros((0, 3), int)))
    with pytest.raises(MeshError, match="NaN"):
        render_array((np.full((3, 3), np.nan), [[0, 1, 2]]))


def test_pyrender_renderer_is_cached_and_per_thread(pyrender_ok):
    render_array(chair(), size=48, backend="pyrender")
    first = render._local.renderer
    render_array(chair(), size=64, backend="pyrender")
    assert render._local.renderer is first  # resized, not rebuilt
    out = {}

    def work():
        out["img"] = render_array(chair(), size=64, backend="pyrender")
        out["renderer"] = render._local.renderer

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert out["renderer"] is not first
    assert np.array_equal(out["img"], render_array(chair(), size=64, backend="pyrender"))


def test_grid_has_a_tile_and_caption_per_mesh(tmp_path):
    meshes = [chair(), None, trimesh.creation.icosphere(1)]
    path = render_grid(
        meshes,
        ["a chair", "failed", "a ball " * 20],
        tmp_path / "g.png",
        cols=2,
        size=96,
        backend="matplotlib",
    )
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[1] == 2 * 96 and img.shape[0] > 2 * 96
    band = img.shape[0] // 2 - 96
    caption = img[96 : 96 + band, :96]
    assert (caption.min(axis=2) < 100).any()  # dark caption text under the first tile
    with pytest.raises(ValueError, match="captions"):
        render_grid(meshes, ["one"], tmp_path / "x.png")


def test_turntable_gif(tmp_path):
    path = render_turntable_gif(
        chair(), tmp_path / "t.gif", frames=6, size=48, backend="matplotlib"
    )
    gif = Image.open(path)
    assert gif.n_frames == 6 and gif.size == (48, 48)
