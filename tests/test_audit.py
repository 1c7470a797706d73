"""The bad-input audit (audit/, issue 16): its classification can fail, its catalogue
covers the six surfaces, and one case per surface runs clean end to end."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit.cases import SURFACES  # noqa: E402
from audit.harness import Case, Outcome, run_case  # noqa: E402


def _outcome(returncode, output, expect="refuse", changed=(), names=("items.csv",)):
    case = Case("x", ("deepalign.data",), names=names, expect=expect)
    return Outcome(case, "items-csv", returncode, output, 0.1, list(changed))


def test_the_classification_of_outcomes():
    message = "error: items.csv: line 2: expected a rating. Fix: correct it"
    assert _outcome(2, message).verdict() == "clean"
    assert _outcome(1, "Traceback (most recent call last):\n ValueError").columns["traceback"]
    assert _outcome(-9, "").columns["traceback"]  # killed by a signal
    assert _outcome(None, "").columns["hang"]
    assert _outcome(0, "ok").columns["silent accept"]
    left = _outcome(2, message, changed=["out/study.json"])
    assert left.columns["left files"] and not left.columns["clean"]
    assert _outcome(2, "error: bad input").columns["unclear"]  # no file, no fix
    assert _outcome(2, "error: line 2 is wrong. Fix: it").columns["unclear"]  # no file
    assert _outcome(0, "ok", expect="accept").verdict() == "clean"
    assert _outcome(2, message, expect="accept").columns["wrong refusal"]


def test_the_catalogue_covers_every_surface_of_the_issue():
    counts = {surface.name: len(surface.cases) for surface in SURFACES}
    assert list(counts) == ["items-csv", "similarity", "study", "train", "encoders", "report",
                            "bandit"]
    # at least as many kinds of input per surface as the issue's audit tried
    wanted = {"items-csv": 46, "similarity": 51, "study": 54, "train": 41, "encoders": 66,
              "report": 29}
    assert all(counts[name] >= wanted[name] for name in wanted), counts
    for surface in SURFACES:
        refusals = [c for c in surface.cases if c.expect == "refuse"]
        assert len(refusals) > len(surface.cases) // 2
        assert all(c.required_names() for c in refusals), surface.name


@pytest.mark.parametrize("surface, case_id", [
    ("items-csv", "underscore-digits"), ("similarity", "pairs-misnamed-header"),
    ("study", "horizon-1e12"), ("study", "levels-collide-in-cell-id"),
    ("train", "seed-negative"),
])
def test_one_case_per_fast_surface_runs_clean(tmp_path, surface, case_id):
    found = {s.name: s for s in SURFACES}[surface]
    case = next(c for c in found.cases if c.id == case_id)
    outcome = run_case(case, surface, tmp_path / "cases", tmp_path / "fixtures")
    assert outcome.verdict() == "clean", (outcome.returncode, outcome.output[-2000:])
