"""Evaluation: metrics over model text, meshes, sets of meshes and descriptions.

Everything here is a pure function; see ``docs/metrics.md`` for each convention and its source.

* :mod:`meshlm.eval.validity` -- strict parse rate and lenient repair counts of model text
* :mod:`meshlm.eval.metrics` -- topology, geometry against a reference
* :mod:`meshlm.eval.sets` -- generated vs reference sets: MMD, COV, 1-NNA, occupancy JSD
* :mod:`meshlm.eval.text_metrics` -- family match, BLEU-1, ROUGE-L, embedding similarity
"""

from meshlm.eval.metrics import (
    FScore,
    as_points,
    chamfer_distance,
    degenerate_faces,
    edge_face_counts,
    f_score,
    face_areas,
    geometry_metrics,
    is_consistently_oriented,
    is_edge_manifold,
    is_watertight,
    normal_consistency,
    normalize_points,
    sample_surface,
    topology_stats,
)
from meshlm.eval.sets import (
    coverage,
    jensen_shannon,
    jsd_occupancy,
    mmd,
    occupancy_distribution,
    one_nna,
    pairwise_chamfer,
    sample_sets,
    set_metrics,
)
from meshlm.eval.text_metrics import (
    bleu1,
    embedding_similarity,
    family_accuracy,
    family_confusion,
    lcs_length,
    load_embedding_model,
    rouge_l,
)
from meshlm.eval.validity import repair_counts, strict_parse_rate

# the family vocabulary lives in meshlm.prompts; kept here, where it was public before
from meshlm.prompts import find_family, normalize_family, tokenize

__all__ = [
    "FScore",
    "as_points",
    "bleu1",
    "chamfer_distance",
    "coverage",
    "degenerate_faces",
    "edge_face_counts",
    "embedding_similarity",
    "f_score",
    "face_areas",
    "family_accuracy",
    "family_confusion",
    "find_family",
    "geometry_metrics",
    "is_consistently_oriented",
    "is_edge_manifold",
    "is_watertight",
    "jensen_shannon",
    "jsd_occupancy",
    "lcs_length",
    "load_embedding_model",
    "mmd",
    "normal_consistency",
    "normalize_family",
    "normalize_points",
    "occupancy_distribution",
    "one_nna",
    "pairwise_chamfer",
    "repair_counts",
    "rouge_l",
    "sample_sets",
    "sample_surface",
    "set_metrics",
    "strict_parse_rate",
    "tokenize",
    "topology_stats",
]
