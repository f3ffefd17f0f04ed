"""meshlm.eval metrics: each checked on cases computed by hand, and on its documented symmetry."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

pytest.importorskip("scipy")

from meshlm.codec import Mesh, encode  # noqa: E402
from meshlm.errors import MeshError, MissingDependencyError  # noqa: E402
from meshlm.eval import (  # noqa: E402
    bleu1,
    chamfer_distance,
    coverage,
    degenerate_faces,
    edge_face_counts,
    embedding_similarity,
    f_score,
    face_areas,
    family_accuracy,
    family_confusion,
    find_family,
    geometry_metrics,
    is_consistently_oriented,
    is_edge_manifold,
    is_watertight,
    jensen_shannon,
    jsd_occupancy,
    lcs_length,
    load_embedding_model,
    mmd,
    normal_consistency,
    normalize_family,
    normalize_points,
    occupancy_distribution,
    one_nna,
    pairwise_chamfer,
    repair_counts,
    rouge_l,
    sample_sets,
    sample_surface,
    set_metrics,
    strict_parse_rate,
    tokenize,
    topology_stats,
)

# --------------------------------------------------------------------------------------------
# Fixtures built by hand (numpy only)
# --------------------------------------------------------------------------------------------

CUBE_V = np.array(
    [[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)]
)  # index = 4x + 2y + z
# 12 triangles, counter-clockwise seen from outside (outward normals)
CUBE_F = np.array(
    [
        [0, 1, 3],
        [0, 3, 2],  # x = 0
        [4, 6, 7],
        [4, 7, 5],  # x = 1
        [0, 4, 5],
        [0, 5, 1],  # y = 0
        [2, 3, 7],
        [2, 7, 6],  # y = 1
        [0, 2, 6],
        [0, 6, 4],  # z = 0
        [1, 5, 7],
        [1, 7, 3],  # z = 1
    ]
)


def cube(shift=(0.0, 0.0, 0.0), faces=CUBE_F):
    return CUBE_V + np.asarray(shift, dtype=float), faces.copy()


def square(z=0.0):
    """The unit square in the plane ``z``, two triangles."""
    v = np.array([[0, 0, z], [1, 0, z], [1, 1, z], [0, 1, z]], dtype=float)
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (a deterministic quadrature grid on the sphere)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z * z)
    phi = np.pi * (1 + 5**0.5) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


# --------------------------------------------------------------------------------------------
# Validity
# --------------------------------------------------------------------------------------------


def test_strict_parse_rate_counts_only_canonical_text():
    text = encode(CUBE_V, CUBE_F)
    texts = [text, "Here is your cube:\n" + text, "no mesh here", "\n" + text + "\n\n"]
    assert strict_parse_rate(texts) == 2 / 4  # prose around the mesh is not strict
    assert strict_parse_rate([text]) == 1.0
    assert strict_parse_rate(text) == 1.0  # one string is one text, not its characters
    with pytest.raises(ValueError):
        strict_parse_rate([])


def test_repair_counts_aggregate_the_lenient_reports():
    text = encode(CUBE_V, CUBE_F)
    lines = text.splitlines()
    slashed = (
        "\n".join(
            ln if not ln.startswith("f") else "f " + " ".join(f"{i}//{i}" for i in ln.split()[1:])
            for ln in lines
        )
        + "\n"
    )
    cut = text.rstrip("\n")[:-1]  # cut inside the last face line, no final newline
    texts = [text, "Sure!\n" + slashed + "Enjoy.", cut, "I cannot draw that."]
    out = repair_counts(texts, cut_off=[False, False, True, False])
    assert out["n"] == 4
    assert out["parse_rate"] == 3 / 4 and out["no_mesh"] == 1
    assert out["clean_rate"] == 1 / 4  # only the canonical text needed nothing
    assert out["truncated_rate"] == 1 / 4
    assert out["repairs"]["slash face indices reduced to vertex index"] == 12
    assert out["drops"]["cut-off last line"] == 1
    assert out["texts_with_repairs"] == 1 and out["texts_with_drops"] == 1
    with pytest.raises(ValueError):
        repair_counts(texts, cut_off=[True])


# --------------------------------------------------------------------------------------------
# Topology
# --------------------------------------------------------------------------------------------


def test_closed_open_and_non_manifold_cubes():
    closed = CUBE_F
    open_ = CUBE_F[1:]  # one triangle removed: three boundary edges
    fin = np.vstack([CUBE_F, [[0, 1, 6]]])  # a third face on edge 0-1
    flipped = CUBE_F.copy()
    flipped[0] = flipped[0, ::-1]

    assert is_watertight(closed) and is_edge_manifold(closed) and is_consistently_oriented(closed)
    assert not is_watertight(open_) and is_edge_manifold(open_) and is_consistently_oriented(open_)
    assert not is_watertight(fin) and not is_edge_manifold(fin)
    assert is_watertight(flipped) and not is_consistently_oriented(flipped)
    assert sorted(np.bincount(edge_face_counts(open_))) == [0, 3, 15]  # 15 inner, 3 border
    assert edge_face_counts(fin).max() == 3
    assert not is_watertight(np.zeros((0, 3), dtype=np.int64))


def test_topology_agrees_with_trimesh():
    trimesh = pytest.importorskip("trimesh")
    rng = np.random.default_rng(3)
    cases = [CUBE_F, CUBE_F[1:], np.vstack([CUBE_F, [[0, 1, 6]]]), CUBE_F[rng.permutation(12)]]
    flipped = CUBE_F.copy()
    flipped[[2, 5]] = flipped[[2, 5], ::-1]
    cases.append(flipped)
    for f in cases:
        t = trimesh.Trimesh(CUBE_V, f, process=False)
        assert is_watertight(f) == t.is_watertight
        if is_edge_manifold(f):
            assert is_consistently_oriented(f) == t.is_winding_consistent
    sphere = trimesh.creation.icosphere(2)
    assert is_watertight(sphere) and is_consistently_oriented(sphere)


def test_degenerate_faces_exact_on_the_grid_and_relative_on_floats():
    q = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2], [0, 1, 0]])
    m = Mesh(quantized=q, faces=np.array([[0, 1, 2], [0, 1, 3]]))
    assert degenerate_faces(m).tolist() == [True, False]
    # |(1,1,1) x (0,1,0)| / 2 = sqrt(2)/2 bins^2, scaled to dequantized units
    assert face_areas(m)[1] == pytest.approx(math.sqrt(2) / 2 / 63**2)
    v = np.array([[0, 0, 0], [1, 0, 0], [2, 1e-14, 0], [0, 1, 0]], dtype=float)
    assert degenerate_faces((v, np.array([[0, 1, 2], [0, 1, 3]]))).tolist() == [True, False]
    assert face_areas(cube()).sum() == pytest.approx(6.0)


def test_topology_stats():
    q = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2], [0, 1, 0]])
    flat = Mesh(quantized=q, faces=np.array([[0, 1, 2], [0, 1, 3]]))
    out = topology_stats([cube(), (CUBE_V, CUBE_F[1:]), flat])
    assert out["n"] == 3
    assert out["watertight_rate"] == pytest.approx(1 / 3)
    assert out["manifold_rate"] == 1.0
    assert out["closed_oriented_rate"] == pytest.approx(1 / 3)
    assert out["degenerate_face_rate"] == pytest.approx(1 / (12 + 11 + 2))
    assert out["meshes_with_degenerate_rate"] == pytest.approx(1 / 3)
    assert out["vertices"] == {"mean": 20 / 3, "median": 8.0, "min": 4.0, "max": 8.0}
    assert out["faces"] == {"mean": 25 / 3, "median": 11.0, "min": 2.0, "max": 12.0}
    with pytest.raises(ValueError):
        topology_stats([])


# --------------------------------------------------------------------------------------------
# Sampling and normalization
# --------------------------------------------------------------------------------------------


def test_sample_surface_is_deterministic_on_the_surface_and_area_weighted():
    a = sample_surface(cube(), 4000, seed=7, normalize=False)
    assert a.shape == (4000, 3) and a.dtype == np.float64
    assert np.array_equal(a, sample_surface(cube(), 4000, seed=7, normalize=False))
    assert not np.array_equal(a, sample_surface(cube(), 4000, seed=8, normalize=False))
    on_face = np.isclose(a, 0.0, atol=1e-12) | np.isclose(a, 1.0, atol=1e-12)
    assert on_face.any(axis=1).all() and (a >= -1e-12).all() and (a <= 1 + 1e-12).all()
    # two triangles with areas 1/2 : 3/2 (and a zero-area one that must never be hit)
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 0, 0], [8, 0, 0], [5, 1, 0], [9, 9, 9]])
    f = np.array([[0, 1, 2], [6, 6, 6], [3, 4, 5]])
    p, normals = sample_surface((v, f), 20000, seed=1, normalize=False, return_normals=True)
    share = (p[:, 0] >= 5).mean()  # binomial sd = sqrt(.75 * .25 / 20000) ~ 0.003
    assert abs(share - 0.75) < 0.015
    assert np.allclose(normals, [0, 0, 1])
    assert not np.isclose(p, 9).any()


def test_sample_surface_normalizes_to_the_unit_cube_and_rejects_empty_surfaces():
    v, f = cube()
    p = sample_surface((v * 10 + 3, f), 5000, seed=0)
    assert p.min() >= -0.5 - 1e-12 and p.max() <= 0.5 + 1e-12
    assert np.allclose(p.min(axis=0), -0.5, atol=0.02)
    with pytest.raises(MeshError):
        sample_surface((v, np.zeros((0, 3), dtype=int)), 10)
    with pytest.raises(MeshError):
        sample_surface((v, np.array([[0, 0, 1]])), 10)
    assert np.allclose(
        normalize_points(np.array([[0, 0, 0], [2, 1, 4.0]])),
        [[-0.25, -0.125, -0.5], [0.25, 0.125, 0.5]],
    )
    with pytest.raises(MeshError):
        normalize_points(np.ones((5, 3)))


# --------------------------------------------------------------------------------------------
# Geometry against a reference
# --------------------------------------------------------------------------------------------


def test_identical_meshes():
    for mesh in (cube(), square()):
        assert chamfer_distance(mesh, mesh) == 0.0
        assert f_score(mesh, mesh).f == 1.0
        assert normal_consistency(mesh, mesh) == pytest.approx(1.0)
    out = geometry_metrics(cube(), cube())
    assert out["chamfer"] == 0.0 and out["chamfer_l1"] == 0.0
    assert out["f_score"] == out["precision"] == out["recall"] == 1.0
    assert out["normal_consistency"] == pytest.approx(1.0)
    # normalization: a scaled and moved copy is the same shape
    v, f = cube()
    assert chamfer_distance((v * 3 - 1, f), (v, f)) == pytest.approx(0.0, abs=1e-24)


def test_shifted_lattice_points_exact():
    """Lattice of spacing 1 against itself shifted by d < 1/2: every nearest neighbour is the
    point's own twin at distance d, so CD = 2 d^2 exactly, L1 CD = 2 d, F = 1 iff d <= t."""
    g = np.stack(np.meshgrid(*[np.arange(4.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    d = 0.3
    h = g + [d, 0, 0]
    assert chamfer_distance(g, h, normalize=False) == pytest.approx(2 * d * d)
    assert chamfer_distance(g, h, normalize=False, squared=False) == pytest.approx(2 * d)
    assert f_score(g, h, threshold=0.31, normalize=False) == (1.0, 1.0, 1.0)
    assert f_score(g, h, threshold=0.29, normalize=False) == (0.0, 0.0, 0.0)


def test_shifted_square_mesh_exact():
    """Same seed: the samples of the lifted square are the samples of the square plus d."""
    d = 0.05
    assert chamfer_distance(square(), square(d), normalize=False) == pytest.approx(2 * d * d)
    assert chamfer_distance(square(), square(d), normalize=False, squared=False) == (
        pytest.approx(2 * d)
    )
    assert normal_consistency(square(), square(d), normalize=False) == pytest.approx(1.0)


def test_shifted_cube_matches_the_surface_integral():
    """Unit cube vs the cube shifted by d along x, continuous surfaces (derived by hand):
    per direction, x faces contribute d^2 and E[min(d, m)^2] (m = distance to the square's
    border), the four side faces 4 d^3 / 3; total CD = (d^2 + d^2 (1-2d)^2 + 8d^3/3 - 2d^4) / 3.
    Dense sampling approaches it (bias O(1/n) up, noise both ways); each point's twin bounds
    CD <= 2 d^2."""
    d = 0.1
    exact = (d * d + d * d * (1 - 2 * d) ** 2 + 8 * d**3 / 3 - 2 * d**4) / 3
    cd = chamfer_distance(cube(), cube((d, 0, 0)), n_points=50_000, normalize=False)
    assert cd == pytest.approx(exact, rel=0.03)
    assert chamfer_distance(cube(), cube((d, 0, 0)), normalize=False) <= 2 * d * d
    # after normalization the shift is gone
    assert chamfer_distance(cube(), cube((d, 0, 0))) == pytest.approx(0.0, abs=1e-24)


def test_sphere_vs_cube_matches_quadrature_and_orders():
    """Inscribed sphere (r = 1/2) and unit cube, both normalized into [-1/2, 1/2]^3.
    sphere -> cube: a sphere point 0.5 u lies 0.5 (1 - max|u_i|) inside the nearest face;
    cube -> sphere: a cube point p lies |p| - 0.5 outside the sphere."""
    trimesh = pytest.importorskip("trimesh")
    u = fibonacci_sphere(400_000)
    s_to_c = np.mean((0.5 * (1 - np.abs(u).max(axis=1))) ** 2)
    x = (np.arange(1000) + 0.5) / 1000 - 0.5
    xx, yy = np.meshgrid(x, x)
    c_to_s = np.mean((np.sqrt(xx**2 + yy**2 + 0.25) - 0.5) ** 2)  # one face = all by symmetry
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    cd = chamfer_distance(sphere, cube(), n_points=50_000)
    assert cd == pytest.approx(s_to_c + c_to_s, rel=0.03)
    coarse = trimesh.creation.icosphere(subdivisions=1)
    assert 0 < chamfer_distance(coarse, sphere) < chamfer_distance(sphere, cube())
    assert normal_consistency(coarse, sphere) > normal_consistency(sphere, cube()) > 0.5
    fs = f_score(sphere, cube(), threshold=0.05)
    assert 0 < fs.f < 1


def test_chamfer_is_symmetric_and_f_score_swaps_precision_and_recall():
    rng = np.random.default_rng(0)
    a, b = rng.random((300, 3)), rng.random((500, 3)) * [1, 2, 1]
    assert chamfer_distance(a, b) == chamfer_distance(b, a)
    assert chamfer_distance(a, b, squared=False) == chamfer_distance(b, a, squared=False)
    fab, fba = f_score(a, b, threshold=0.05), f_score(b, a, threshold=0.05)
    assert (fab.precision, fab.recall) == (fba.recall, fba.precision)
    assert fab.f == pytest.approx(fba.f)
    assert fab.precision != fab.recall
    assert normal_consistency(cube(), square()) == normal_consistency(square(), cube())


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.just(3)),
        elements=st.floats(-10, 10, allow_nan=False),
    ),
    arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.just(3)),
        elements=st.floats(-10, 10, allow_nan=False),
    ),
)
def test_chamfer_properties(a, b):
    ab = chamfer_distance(a, b, normalize=False)
    assert ab >= 0 and ab == chamfer_distance(b, a, normalize=False)
    assert chamfer_distance(a, a, normalize=False) == 0.0
    # brute force
    d = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    assert ab == pytest.approx((d.min(1) ** 2).mean() + (d.min(0) ** 2).mean(), rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Sets (PointFlow)
# --------------------------------------------------------------------------------------------


def point(x: float) -> np.ndarray:
    return np.array([[x, 0.0, 0.0]])


def test_pairwise_chamfer_matches_single_calls_with_ragged_sets():
    rng = np.random.default_rng(1)
    gen = [rng.random((n, 3)) for n in (5, 17, 40)]
    ref = [rng.random((n, 3)) for n in (9, 33)]
    d = pairwise_chamfer(gen, ref)
    assert d.shape == (3, 2)
    for i, g in enumerate(gen):
        for j, r in enumerate(ref):
            assert d[i, j] == pytest.approx(chamfer_distance(g, r, normalize=False))
            assert pairwise_chamfer(gen, ref, squared=False)[i, j] == pytest.approx(
                chamfer_distance(g, r, normalize=False, squared=False)
            )
    same = pairwise_chamfer(gen, gen)
    assert np.array_equal(same, same.T) and np.all(np.diag(same) == 0)


def test_mmd_cov_one_nna_by_hand():
    """Single-point sets: D({p}, {q}) = 2 |p - q|^2. gen = {0, 1}, ref = {0, 3}:
    D = [[0, 18], [2, 8]] -> MMD = (0 + 8) / 2 = 4, COV = 1/2 (both gen pick ref 0).
    1-NNA: gen0 -> ref0 (wrong), gen1 -> gen0 or ref0 tied at 2 (1/2), ref0 -> gen0 (wrong),
    ref1 -> gen1 at 8 < 18 (wrong): (0 + 1/2 + 0 + 0) / 4."""
    gen, ref = [point(0), point(1)], [point(0), point(3)]
    assert np.allclose(pairwise_chamfer(gen, ref), [[0, 18], [2, 8]])
    assert mmd(gen, ref) == pytest.approx(4.0)
    assert coverage(gen, ref) == 0.5
    assert one_nna(gen, ref) == pytest.approx(0.125)
    assert one_nna(ref, gen) == pytest.approx(0.125)  # 1-NNA is symmetric
    assert mmd(distances=np.array([[0, 18], [2, 8.0]])) == pytest.approx(4.0)


def test_cov_and_mmd_on_known_sets_and_asymmetry():
    rng = np.random.default_rng(2)
    ref = [rng.normal(size=(64, 3)) * s for s in (0.1, 0.2, 0.4, 0.8)]
    assert coverage(ref, ref) == 1.0 and mmd(ref, ref) == 0.0
    same = [ref[0].copy() for _ in range(5)]  # every generated shape identical
    assert coverage(same, ref) == 1 / len(ref)
    expected = np.mean([chamfer_distance(ref[0], r, normalize=False) for r in ref])
    assert mmd(same, ref) == pytest.approx(expected)
    # not symmetric: the references cover the single distinct generated shape completely
    one = [ref[0]]
    assert coverage(ref, one) == 1.0 and coverage(one, ref) == 0.25
    assert mmd(ref, one) == 0.0 and mmd(one, ref) > 0.0


def gaussian_sets(rng, n, lo, hi):
    return [rng.normal(size=(128, 3)) * s for s in rng.uniform(lo, hi, n)]


def test_one_nna_half_for_one_distribution_and_one_for_disjoint():
    rng = np.random.default_rng(4)
    a, b = gaussian_sets(rng, 40, 0.05, 0.5), gaussian_sets(rng, 40, 0.05, 0.5)
    assert abs(one_nna(a, b) - 0.5) < 0.15  # sd of the accuracy ~ 0.06
    far = gaussian_sets(rng, 40, 2.0, 3.0)
    assert one_nna(a, far) == 1.0
    assert one_nna(a, a) == 0.0  # copies: each shape's twin is its nearest neighbour


def test_jsd_occupancy_identical_disjoint_and_by_hand():
    rng = np.random.default_rng(5)
    low = [rng.uniform(-0.5, -0.1, (200, 3)) for _ in range(3)]
    high = [rng.uniform(0.1, 0.5, (200, 3)) for _ in range(3)]
    assert jsd_occupancy(low, low) == 0.0
    assert jsd_occupancy(low, high) == pytest.approx(1.0)
    assert jsd_occupancy(low, high, base=math.e) == pytest.approx(math.log(2))
    # P = (1/2, 1/2, 0), Q = (0, 1/2, 1/2): JSD = 1/2 bit
    c = [[-0.4, -0.4, -0.4], [0.4, -0.4, -0.4], [0.4, 0.4, 0.4]]  # three cells of a 2^3 grid
    p_sets = [np.array([c[0], c[1]])]
    q_sets = [np.array([c[1]]), np.array([c[2]] * 50)]
    assert jsd_occupancy(p_sets, q_sets, resolution=2) == pytest.approx(0.5)
    assert jsd_occupancy(q_sets, p_sets, resolution=2) == pytest.approx(0.5)  # symmetric
    # occupancy, not point counts: 50 points in one cell weigh as much as 1 in another
    occ = occupancy_distribution(q_sets, resolution=2)
    assert occ.shape == (8,) and sorted(occ[occ > 0]) == [0.5, 0.5]
    # points outside the unit cube are clipped into the border cells
    assert occupancy_distribution([np.array([[-3.0, -3, -3]])], 2)[0] == 1.0
    assert jensen_shannon([1, 0], [1, 0]) == 0.0
    with pytest.raises(ValueError):
        jensen_shannon([0, 0], [1, 0])


def test_set_metrics_on_sampled_meshes():
    trimesh = pytest.importorskip("trimesh")
    shapes = [trimesh.creation.box(extents=e) for e in ((1, 1, 1), (1, 0.5, 1), (1, 0.2, 0.6))]
    shapes.append(trimesh.creation.icosphere(2))
    sets = sample_sets(shapes, n=512, seed=0)
    assert all(s.shape == (512, 3) for s in sets)
    out = set_metrics(sets, sets)
    assert out == {"mmd": 0.0, "cov": 1.0, "one_nna": 0.0, "jsd": 0.0}
    out = set_metrics(sets[:1], sets)
    assert out["cov"] == 0.25 and out["mmd"] > 0 and 0 < out["jsd"] < 1


def test_pairwise_chamfer_speed_small():
    rng = np.random.default_rng(6)
    gen = [rng.random((2048, 3)) for _ in range(8)]
    ref = [rng.random((2048, 3)) for _ in range(8)]
    start = time.perf_counter()
    pairwise_chamfer(gen, ref)
    assert time.perf_counter() - start < 10


def test_pairwise_chamfer_matrix_equals_pairwise_calls():
    # speed is a benchmark matter, not a unit test's; here: the matrix is the pairwise values
    rng = np.random.default_rng(7)
    gen = [rng.random((256, 3)) - 0.5 for _ in range(6)]
    ref = [rng.random((300, 3)) - 0.5 for _ in range(5)]
    d = pairwise_chamfer(gen, ref)
    assert d.shape == (6, 5) and np.all(d > 0)
    for i, g in enumerate(gen):
        for j, r in enumerate(ref):
            assert d[i, j] == pytest.approx(chamfer_distance(g, r, normalize=False), rel=1e-9)


# --------------------------------------------------------------------------------------------
# Understanding
# --------------------------------------------------------------------------------------------

FAMILIES = ["box", "sphere", "table", "lamp", "pine_tree", "tree", "wine_glass", "cup", "mug"]


def test_tokenize_and_family_names():
    assert tokenize("A Wine-glass, 2x!") == ["a", "wine", "glass", "2x"]
    assert normalize_family("Wine glass") == normalize_family("wine-glass") == "wine_glass"


def test_find_family():
    assert find_family("A low poly pine tree with three tiers.", FAMILIES) == "pine_tree"
    assert find_family("a tree", FAMILIES) == "tree"
    assert find_family("Two wine glasses on a table", FAMILIES) == "wine_glass"
    assert find_family("A wooden CUBE", FAMILIES) == "box"  # synonym
    assert find_family("A wooden CUBE", FAMILIES, synonyms={}) is None
    assert find_family("a coffee mug next to a cup", FAMILIES) == "mug"  # earliest mention
    assert find_family("boxes", FAMILIES) == "box"
    assert find_family("a lampshade", FAMILIES) is None  # whole words only
    assert find_family("a spaceship", FAMILIES) is None  # synonym of a family not listed
    assert find_family("a small pine", ["pine_tree"], synonyms={"pine_tree": ["pine"]}) == (
        "pine_tree"
    )


def test_every_caption_of_a_family_names_that_family():
    """The judge of `eval understand` must recognize meshlm's own captions: a model answering
    with the very caption of the mesh would otherwise be scored wrong (before the caption nouns
    were synonyms, 'A semicircular archway', 'A pickup truck ...', 'A wooden mallet ...' were)."""
    from meshlm.shapes import generate, list_families

    families = list_families()
    wrong = []
    for shape in generate(30 * len(families), seed=123):
        # "a slender ring" is one of the torus's captions, and ring is a family of its own
        among = [f for f in families if not (shape.family == "torus" and f == "ring")]
        got = find_family(shape.caption, among)
        if got != shape.family:
            wrong.append((shape.family, got, shape.caption))
    assert not wrong, wrong[:5]
    assert find_family("A slender ring", families) == "ring"


def test_family_accuracy():
    assert (
        family_accuracy(["box", "Pine tree", None, "cup"], ["box", "pine_tree", "mug", "mug"])
        == 0.5
    )
    with pytest.raises(ValueError):
        family_accuracy(["box"], ["box", "cup"])
    with pytest.raises(ValueError):
        family_accuracy([], [])


def test_family_confusion_counts_by_label():
    m = family_confusion(
        ["box", "Pine tree", None, "cup", "box", "cone"],
        ["cone", "pine_tree", "mug", "mug", "cone", "cone"],
    )
    # labels sorted; in a row the most frequent first, ties by name; None is "none"
    assert m == {
        "cone": {"box": 2, "cone": 1},
        "mug": {"cup": 1, "none": 1},
        "pine_tree": {"pine_tree": 1},
    }
    assert list(m) == ["cone", "mug", "pine_tree"] and list(m["mug"]) == ["cup", "none"]
    assert family_confusion([], []) == {}
    with pytest.raises(ValueError):
        family_confusion(["box"], ["box", "cup"])


def test_bleu1_by_hand():
    # clipped unigrams: the 2, cat 1, sat 0, on 1, mat 1 -> 5/6; equal lengths -> BP = 1
    assert bleu1("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # Papineni et al.'s example: 'the' clipped to 2 of 7; closest reference length 7 -> BP = 1
    refs = ["The cat is on the mat.", "There is a cat on the mat."]
    assert bleu1("the the the the the the the", refs) == pytest.approx(2 / 7)
    # brevity: precision 1, c = 2, r = 6 -> exp(1 - 3)
    assert bleu1("The cat", "the cat is on the mat") == pytest.approx(math.exp(-2))
    # closest reference length: 3 (of 3 and 6) -> no penalty
    assert bleu1("the cat sat", ["the cat sat", "the cat is on the mat"]) == 1.0
    assert bleu1("", "a cat") == 0.0 and bleu1("dog", "a cat") == 0.0


def test_rouge_l_by_hand():
    assert lcs_length("abcbdab", "bdcaba") == 4  # the textbook LCS example
    # LCS 'the cat on the mat' = 5 of 6 both ways
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # Lin 2004: 'police kill the gunman' vs 'police killed the gunman': LCS 3 of 4
    assert rouge_l("police killed the gunman", "police kill the gunman") == pytest.approx(0.75)
    # P = 2/3, R = 1 -> F1 = 0.8; beta = 2 weighs recall: 5 * (2/3) / (4 * 2/3 + 1) = 10/11
    assert rouge_l("the cat sat", "the cat") == pytest.approx(0.8)
    assert rouge_l("the cat sat", "the cat", beta=2.0) == pytest.approx(10 / 11)
    assert rouge_l("a b", "b a") == rouge_l("b a", "a b") == 0.5
    assert rouge_l("the cat", ["a dog", "the cat"]) == 1.0  # best reference
    assert rouge_l("", "the cat") == 0.0


def test_embedding_similarity_with_the_offline_model():
    try:
        same = embedding_similarity("a wooden chair", "a wooden chair")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    assert same == pytest.approx(1.0, abs=1e-5)
    sims = embedding_similarity(
        ["a wooden chair", "a wooden chair"], ["a chair made of wood", "a red sports car"]
    )
    assert sims.shape == (2,) and sims[0] > sims[1] + 0.3
    with pytest.raises(ValueError):
        embedding_similarity(["a"], ["a", "b"])
    # a loaded model can be passed in (anything with a sentence-transformers encode method)
    model = load_embedding_model()
    assert embedding_similarity("a lamp", "a lamp", model=model) == pytest.approx(1.0, abs=1e-5)
