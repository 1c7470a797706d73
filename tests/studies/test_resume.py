"""An interrupted and re-run study gives exactly the table of an uninterrupted one."""

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from deepalign.errors import ConfigError
from deepalign.studies import load_study_config, read_table, run_study

_spec = importlib.util.spec_from_file_location("tiny_study", Path(__file__).with_name(
    "tiny_study.py"))
tiny_study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_study)


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small eigen-decompositions: much faster single-threaded
    root = tmp_path_factory.mktemp("tiny")
    runs = [tiny_study.make_encoder_run(root / f"run{seed}", seed) for seed in range(2)]
    yield tiny_study.write_recipe(root, runs)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def finished(recipe, tmp_path_factory):
    """The uninterrupted study (its directory is copied by tests that change it)."""
    return run_study(load_study_config(recipe), tmp_path_factory.mktemp("full") / "out",
                     progress=False)


def test_interrupted_study_resumes_to_the_same_table(recipe, finished, tmp_path):
    config = load_study_config(recipe)
    full = finished
    assert full.n_run == full.n_cells and full.n_skipped == 0
    reference = read_table(full.table)
    ids = [row["cell_id"] for row in reference.rows]
    assert len(ids) == len(set(ids)) == full.n_cells
    assert set(reference.column("study")) == {"synthetic", "real", "trained"}

    def stop_after_three(written: int) -> None:
        if written == 3:
            raise Interrupt

    cut = tmp_path / "cut"
    with pytest.raises(Interrupt):
        run_study(config, cut, progress=False, after_batch=stop_after_three)
    assert not (cut / "results.csv").exists()
    assert len(list((cut / "parts").glob("*.csv"))) == 3
    (cut / "parts" / ".half-written.csv.123.tmp").write_text("cell_id,study\nbroken")  # a crash

    resumed = run_study(config, cut, progress=False)
    assert resumed.n_skipped == 6  # three batches of batch_runs=2 cells
    assert resumed.n_run == full.n_cells - 6
    assert (cut / "results.csv").read_text() == full.table.read_text()  # same rows, values

    again = run_study(config, cut, progress=False)
    assert again.n_run == 0 and again.n_skipped == full.n_cells
    assert (cut / "results.csv").read_text() == full.table.read_text()


def test_lost_part_is_recomputed_identically(recipe, finished, tmp_path):
    copy = shutil.copytree(finished.table.parent, tmp_path / "a")
    expected = finished.table.read_text()
    parts = sorted((copy / "parts").glob("*.csv"))
    lost = read_table(parts[-1])
    parts[-1].unlink()
    (copy / "results.csv").unlink()
    rerun = run_study(load_study_config(recipe), copy, progress=False)
    assert rerun.n_run == len(lost) and rerun.n_skipped == rerun.n_cells - len(lost)
    assert (copy / "results.csv").read_text() == expected


def test_other_settings_in_the_same_directory_are_refused(recipe, finished, tmp_path):
    copy = shutil.copytree(finished.table.parent, tmp_path / "b")
    changed = recipe.with_name("changed.yaml")
    changed.write_text(recipe.read_text().replace("horizon: 10", "horizon: 11"))
    with pytest.raises(ConfigError, match="horizon"):
        run_study(load_study_config(changed), copy, progress=False)
