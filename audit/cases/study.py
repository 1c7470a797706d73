"""Study recipes and options given to `python -m deepalign.study RECIPE --out out`."""

from __future__ import annotations

import shutil

from audit.fixtures import TINY_STUDY
from audit.harness import READ_ONLY, Case, names_for

NEEDS = ("study",)

BASE = "name: tiny\nseeds: 2\nhorizon: 5\n"
REAL = "real:\n  values: [act_evaluation]\n  kernels: [length]\n  agents: [gp-ts]\n" \
       "  length_control: false\n"
GOOD = BASE + REAL
SYNTHETIC = "synthetic:\n  levels: [0.0, 1.0]\n  agents: [gp-ts]\n  references: false\n"


def _case(id, recipe, *args, names=(), expect="refuse", setup=None, check=None, note="",
          env=None, timeout=180.0, file="study.yaml"):
    files = {} if recipe is None else {file: recipe}
    return Case(id, ("deepalign.study", file, "--out", "out", "--no-progress", *args),
                files=files, names=names_for(file, names), expect=expect, setup=setup, check=check,
                note=note, env=env or {}, timeout=timeout)


def _has_table(case_dir, output):
    table = case_dir / "out" / "results.csv"
    if not table.is_file() or len(table.read_text().splitlines()) < 2:
        return "no results.csv with rows"
    return None


def _existing_study(case_dir, fx):
    shutil.copytree(fx / "study", case_dir / "out")


def _out_file(case_dir, fx):
    (case_dir / "out").write_text("not a directory\n")


def _out_foreign(case_dir, fx):
    (case_dir / "out").mkdir()
    (case_dir / "out" / "thesis.tex").write_text("\\documentclass{article}\n")


def _recipe_dir(case_dir, fx):
    (case_dir / "study.yaml").mkdir()


PAYLOAD = BASE + "real: !!python/object/apply:os.system ['touch PWNED']\n"


def _not_pwned(case_dir, output):
    return "the YAML payload ran" if (case_dir / "PWNED").exists() else None


CASES = [
    _case("valid", GOOD, expect="accept", check=_has_table),
    _case("valid-synthetic", BASE + SYNTHETIC, expect="accept", check=_has_table),
    _case("valid-resume", TINY_STUDY, expect="accept", setup=_existing_study, check=_has_table,
          note="the fixture study's recipe: every cell already done"),
    _case("unknown-key", "seedz: 2\n" + REAL, names=("seedz",)),
    _case("unknown-nested-key", BASE + "real: {kernelz: [length]}\n", names=("kernelz",)),
    _case("horizon-word", "horizon: ten\n" + REAL, names=("horizon",)),
    _case("agents-not-a-list", BASE + "real: {agents: gp-ts, kernels: [length]}\n",
          names=("agents",)),
    _case("seeds-fraction", "seeds: 2.5\n" + REAL, names=("seeds",)),
    _case("unknown-dataset", BASE + "real: {dataset: spa-verbs, kernels: [length]}\n",
          names=("spa-verbs",)),
    _case("unknown-agent", BASE + "real: {agents: [gp-thompson], kernels: [length]}\n",
          names=("gp-thompson",)),
    _case("unknown-kernel", BASE + "real: {kernels: [length, bert]}\n", names=("bert",)),
    _case("unknown-value", BASE + "real: {values: [morality], kernels: [length]}\n",
          names=("morality",)),
    _case("human-without-similarity", BASE + "real: {dataset: act-behaviors, values: "
          "[act_potency], kernels: [human]}\n", names=("human",)),
    _case("memory-budget-zero", "memory_budget_mb: 0\n" + REAL, names=("memory_budget_mb",)),
    _case("yaml-syntax", BASE + "real: {kernels: [length\n"),
    _case("empty-recipe", ""),
    _case("comments-only", "# nothing here\n"),
    _case("top-level-list", "- real\n- synthetic\n"),
    _case("no-section", BASE),
    _case("not-utf-8", (GOOD + "# caf\xe9\n").encode("latin-1")),
    _case("duplicated-key", BASE + "seeds: 3\n" + REAL, names=("seeds",)),
    _case("values-empty", BASE + "real: {values: [], kernels: [length]}\n", names=("values",)),
    _case("agents-empty", BASE + "real: {agents: [], kernels: [length]}\n", names=("agents",)),
    _case("kernels-empty", BASE + "real: {kernels: []}\n", names=("kernels",)),
    _case("horizon-1e12", "seeds: 2\nhorizon: 1000000000000\n" + REAL, names=("horizon",)),
    _case("horizon-float-1e12", "seeds: 2\nhorizon: 1e12\n" + REAL, names=("horizon",)),
    _case("horizon-zero", "seeds: 2\nhorizon: 0\n" + REAL, names=("horizon",)),
    _case("horizon-negative", "seeds: 2\nhorizon: -5\n" + REAL, names=("horizon",)),
    _case("seeds-billion", "seeds: 1000000000\nhorizon: 5\n" + REAL, names=("seeds",),
          timeout=60),
    _case("seeds-zero", "seeds: 0\nhorizon: 5\n" + REAL, names=("seeds",)),
    _case("seeds-negative-count", "seeds: -1\nhorizon: 5\n" + REAL, names=("seeds",)),
    _case("seed-list-negative", "seeds: [0, -3]\nhorizon: 5\n" + REAL, names=("seeds",)),
    _case("seed-list-duplicate", "seeds: [1, 1]\nhorizon: 5\n" + REAL, names=("seeds",)),
    _case("levels-duplicate", BASE + "synthetic: {levels: [0.5, 0.5], agents: [gp-ts]}\n",
          names=("levels",)),
    _case("levels-collide-in-cell-id", BASE + "synthetic: {levels: [0.1234561, 0.1234562], "
          "agents: [gp-ts]}\n", names=("levels",)),
    _case("level-above-one", BASE + "synthetic: {levels: [0.5, 1.5], agents: [gp-ts]}\n",
          names=("levels",)),
    _case("levels-zero-count", BASE + "synthetic: {levels: 0, agents: [gp-ts]}\n",
          names=("levels",)),
    _case("unknown-environment", BASE + "synthetic: {levels: [1.0], environment: sampled}\n",
          names=("environment",)),
    _case("unknown-arm-set", BASE + "synthetic: {levels: [1.0], arms: half}\n",
          names=("arms",)),
    _case("device-bogus", "device: bogus\n" + GOOD, names=("device",)),
    _case("device-cuda-absent", "device: cuda\n" + GOOD, names=("cuda",)),
    _case("option-device-bogus", GOOD, "--device", "bogus", names=("--device",)),
    _case("option-device-cuda-absent", GOOD, "--device", "cuda:3", names=("--device",)),
    _case("noise-inf", "noise: .inf\n" + GOOD, names=("noise",)),
    _case("noise-nan", "noise: .nan\n" + GOOD, names=("noise",)),
    _case("noise-negative", "noise: -1\n" + GOOD, names=("noise",)),
    _case("noise-overflowing", "noise: 1.0e+308\n" + GOOD, names=("noise",),
          note="noise x scale range overflowed to inf after study.json was written"),
    _case("exponent-read-as-text", "noise: 1e-3\n" + GOOD, names=("noise", "1.0e-3"),
          note="PyYAML reads 1e-3 as a string"),
    _case("heldout-fraction-all-items", "heldout_fraction: 0.999\n" + GOOD,
          names=("heldout_fraction",), note="failed after study.json was written"),
    _case("option-threads-100000", GOOD, "--threads", "100000", names=("--threads",)),
    _case("horizon-bool", "seeds: 2\nhorizon: true\n" + REAL, names=("horizon",)),
    _case("calibration-string", "calibration: 'yes'\n" + GOOD, names=("calibration",)),
    _case("heldout-fraction-one", "heldout_fraction: 1.0\n" + GOOD, names=("heldout_fraction",)),
    _case("split-seed-negative", "split_seed: -1\n" + GOOD, names=("split_seed",)),
    _case("batch-runs-zero", "batch_runs: 0\n" + GOOD, names=("batch_runs",)),
    _case("unknown-primary-metric", "primary_metric: happiness\n" + GOOD,
          names=("primary_metric",)),
    _case("option-threads-zero", GOOD, "--threads", "0", names=("--threads",)),
    _case("option-threads-negative", GOOD, "--threads", "-2", names=("--threads",)),
    _case("option-num-cpus-zero", GOOD, "--backend", "ray", "--num-cpus", "0",
          names=("--num-cpus",)),
    _case("option-max-retries-negative", GOOD, "--backend", "ray", "--max-retries", "-1",
          names=("--max-retries",)),
    _case("option-address-malformed", GOOD, "--backend", "ray", "--address", "http://x y",
          names=("--address",)),
    _case("option-address-without-ray", GOOD, "--address", "auto", names=("--address",)),
    _case("option-gpus-negative", GOOD, "--backend", "ray", "--gpus-per-task", "-1",
          names=("--gpus-per-task",)),
    _case("too-many-levels", BASE + "synthetic: {levels: 20000, agents: [gp-ts]}\n",
          names=("levels", "DEEPALIGN_MAX_LEVELS")),
    _case("too-many-cells", "seeds: 90000\nhorizon: 5\nsynthetic: {levels: 9000, agents: "
          "[gp-ts, svr]}\n", names=("cells", "DEEPALIGN_MAX_CELLS")),
    _case("recipe-missing", None),
    _case("recipe-a-directory", None, setup=_recipe_dir),
    _case("out-is-a-file", GOOD, setup=_out_file, names=("--out",)),
    _case("out-holds-other-files", GOOD, setup=_out_foreign, names=("--out",)),
    _case("out-holds-another-recipe", TINY_STUDY.replace("horizon: 5", "horizon: 6"),
          setup=_existing_study, names=("--out", "horizon")),
    Case("out-read-only", ("deepalign.study", "study.yaml", "--out", READ_ONLY,
                           "--no-progress"), files={"study.yaml": GOOD}, names=(READ_ONLY,)),
    _case("yaml-python-payload", PAYLOAD, check=_not_pwned),
    _case("user-csv-missing", BASE + "real: {dataset: mine.csv, kernels: [length]}\n",
          names=("mine.csv",)),
    _case("user-card-broken", BASE + "real: {dataset: card.yaml, kernels: [length]}\n",
          names=("card.yaml", "itemz"),
          note="the card has a misspelt key") ,
]

# the broken card of "user-card-broken" sits beside the recipe
CASES[-1] = Case(**{**CASES[-1].__dict__,
                    "files": {**CASES[-1].files, "card.yaml": "itemz: items.csv\n"}})
