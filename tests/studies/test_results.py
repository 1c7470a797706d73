"""The results table: exact round trip, atomic per-batch parts, dedupe, schema errors."""

import math

import pytest

from deepalign.errors import DataError
from deepalign.studies.grid import Cell, batches, check_unique
from deepalign.studies.results import COLUMNS, ResultsStore, read_table, write_table


def _row(cell: Cell, value: float) -> dict:
    row = dict.fromkeys(COLUMNS, math.nan)
    row.update(
        cell_id=cell.cell_id, study=cell.study, condition=cell.condition, dataset=cell.dataset,
        value=cell.value, kernel=cell.kernel, agent=cell.agent, seed=cell.seed,
        level=cell.level, horizon=10, n_arms=5, n_heldout=2, backend="engine",
        alignment_source="test", mean_reward=value, alignment_train=value / 3,
    )
    return row


def _cells(n_seeds=3, levels=(0.0, 0.5)):
    return [Cell("synthetic", "synthetic", "d", "v", "synthetic", agent, seed, level=level)
            for level in levels for agent in ("gp-ts", "svr") for seed in range(n_seeds)]


def test_cell_ids_are_stable_and_unique():
    cells = _cells()
    check_unique(cells)
    assert cells[0].cell_id == "synthetic/synthetic/d/v/synthetic/gp-ts/level=0/seed=0"
    trained = Cell("trained", "paired", "d", "v", "after", "gp-ts", 2, encoder_seed=1.0, epoch=4)
    assert trained.cell_id == "trained/paired/d/v/after/gp-ts/encoder=1/epoch=4/seed=2"
    with pytest.raises(ValueError, match="duplicate"):
        check_unique(cells + cells[:1])


def test_batches_group_by_everything_but_seed():
    cells = _cells(n_seeds=5)
    groups = batches(cells, max_runs=2)
    assert [len(b) for b in groups] == [2, 2, 1] * 4
    for batch in groups:
        assert len({c.group for c in batch}) == 1
    assert [c for b in groups for c in b] == cells


def test_round_trip_is_exact(tmp_path):
    rows = [_row(c, 1.0 / (i + 3)) for i, c in enumerate(_cells())]
    path = write_table(tmp_path / "t.csv", rows)
    table = read_table(path)
    assert [r["cell_id"] for r in table.rows] == [r["cell_id"] for r in rows]
    for ours, theirs in zip(table.rows, rows):
        assert ours["mean_reward"] == theirs["mean_reward"]  # repr round trip, bit-exact
        assert ours["seed"] == theirs["seed"] and isinstance(ours["seed"], int)
        assert math.isnan(ours["bad_actions"])
    assert not list(tmp_path.glob(".*tmp"))


def test_store_dedupes_and_resumes(tmp_path):
    store = ResultsStore(tmp_path)
    cells = _cells()
    first = [_row(c, float(i)) for i, c in enumerate(cells[:4])]
    store.write_batch(first)
    store.write_batch(first[2:])  # a retried batch: the same cells again
    assert store.completed() == {c.cell_id for c in cells[:4]}
    assert len(store.read_parts()) == 4
    store.write_batch([_row(c, 9.0) for c in cells[4:]])
    merged = read_table(store.merge([c.cell_id for c in reversed(cells)]))
    assert [r["cell_id"] for r in merged.rows] == [c.cell_id for c in reversed(cells)]
    only = read_table(store.merge([c.cell_id for c in cells[:2]], keep_only=True))
    assert len(only) == 2


def test_other_schema_and_damaged_rows_are_refused(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a deepalign results table"):
        read_table(other)
    good = write_table(tmp_path / "good.csv", [_row(_cells()[0], 1.0)])
    lines = good.read_text().splitlines()
    (tmp_path / "short.csv").write_text(lines[0] + "\n" + lines[1].rsplit(",", 3)[0] + "\n")
    with pytest.raises(DataError, match="line 2"):
        read_table(tmp_path / "short.csv")
    (tmp_path / "text.csv").write_text(lines[0] + "\n" + lines[1].replace(",1.0,", ",one,", 1)
                                       + "\n")
    with pytest.raises(DataError, match="expected a number"):
        read_table(tmp_path / "text.csv")
    with pytest.raises(DataError, match="columns"):
        write_table(tmp_path / "bad.csv", [{"cell_id": "x"}])
    with pytest.raises(DataError, match="no results table"):
        read_table(tmp_path / "missing.csv")
