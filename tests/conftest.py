"""Hypothesis profiles: random search here, a fixed search in CI.

Locally each run draws new examples (that is how the codec's edge cases were found; a failing
draw is then pinned with ``@example``). In CI (``CI`` set, as ``.ci/run`` runs) the draws are
derandomized, so a green or red CI depends on the code, not on the draw."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
