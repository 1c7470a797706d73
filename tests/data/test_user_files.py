"""User files: round trips through every supported format, the paper's layout, and one test
per kind of bad input (type + a message naming the file and the line/cell/field)."""

import csv
import warnings

import numpy as np
import pytest
import torch

from deepalign.data import load_dataset, load_user_dataset
from deepalign.errors import DataError

ACT = ("act_evaluation", "act_potency", "act_activity")


def _bundled(**options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset("spa-verb-act", **options)


def _write_items(path, dataset, header=("id", "text"), value_names=None, transform=None):
    names = dataset.values.names if value_names is None else value_names
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*header, *names])
        for i, (item_id, text) in enumerate(zip(dataset.items.ids, dataset.items.texts)):
            ratings = dataset.values.ratings[i].tolist()
            if transform is not None:
                ratings = [transform(r) for r in ratings]
            cells = [item_id, text] if len(header) == 2 else [text]
            writer.writerow([*cells, *map(repr, ratings)])
    return path


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- round trips


def test_round_trip_npy_matrix_and_values(tmp_path):
    source = _bundled(classes=(6,), values=ACT)           # complete within one class
    items = _write_items(tmp_path / "items.csv", source)
    np.save(tmp_path / "sim.npy", source.similarity.matrix.numpy())
    loaded = load_user_dataset(items, tmp_path / "sim.npy", scales=(-4.3, 4.3))
    assert loaded.items == source.items
    assert torch.equal(loaded.similarity.matrix, source.similarity.matrix)
    assert torch.equal(loaded.similarity.mask, source.similarity.mask)
    assert torch.equal(loaded.values.ratings, source.values.ratings)
    assert torch.equal(loaded.values.thresholds, source.values.thresholds)
    assert loaded.values.scales == source.values.scales


def test_round_trip_csv_matrix_with_id_header(tmp_path):
    source = _bundled(classes=(6,))
    items = _write_items(tmp_path / "items.csv", source)
    with open(tmp_path / "sim.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["", *source.items.ids])
        for item_id, row in zip(source.items.ids, source.similarity.matrix.tolist()):
            writer.writerow([item_id, *map(repr, row)])
    loaded = load_user_dataset(items, tmp_path / "sim.csv", scales=(-4.3, 4.3))
    assert torch.equal(loaded.similarity.matrix, source.similarity.matrix)


@pytest.mark.parametrize("kind", ["similarity", "distance"])
def test_round_trip_pairs_csv_block_wise(tmp_path, kind):
    source = _bundled(classes=(1, 6))                      # two blocks: incomplete matrix
    items = _write_items(tmp_path / "items.csv", source)
    hi = source.similarity.scale[1]
    s, mask = source.similarity.matrix, source.similarity.mask
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item_a", "item_b", kind, "n_raters"])
        for i, j in torch.nonzero(torch.triu(mask, diagonal=1)).tolist():
            score = float(s[i, j]) if kind == "similarity" else (1 - float(s[i, j])) * hi
            writer.writerow([source.items.ids[i], source.items.ids[j], repr(score), 12])
    scale = (0.0, 1.0) if kind == "similarity" else (0.0, hi)
    loaded = load_user_dataset(items, tmp_path / "pairs.csv", scales=(-4.3, 4.3), kind=kind,
                               similarity_scale=scale)
    assert torch.equal(loaded.similarity.mask, mask)
    assert loaded.similarity.n_pairs == source.similarity.n_pairs
    assert torch.allclose(loaded.similarity.matrix, s, atol=1e-12, rtol=0)
    raters = loaded.similarity.n_raters
    assert raters[0, 1] == 12 and torch.isnan(raters[0, 0])


def test_paper_layout_loads_with_at_most_a_column_name(tmp_path):
    source = _bundled(classes=(2,)).subset(range(50))      # 50 real actions, complete matrix
    to_100 = lambda e: (e + 4.3) / 8.6 * 100              # noqa: E731 - ACT E on 0..100
    csv_path = _write_items(tmp_path / "justice_50_actions_with_values.csv", source,
                            header=("action",), value_names=("value",), transform=to_100)
    npy_path = tmp_path / "survey_similarity.npy"
    np.save(npy_path, source.similarity.matrix.numpy())
    plain = load_user_dataset(csv_path, npy_path)
    # the paper's layout (an 'action' column, ratings within 0-100): its scale, with a note
    assert plain.values.scales == ((0.0, 100.0),) and plain.values.thresholds.tolist() == [50.0]
    assert any("paper's layout" in note for note in plain.info["notes"])
    assert len(plain.items) == 50 and plain.similarity.matrix.shape == (50, 50)
    assert plain.items.texts == source.items.texts
    assert torch.equal(plain.similarity.matrix, source.similarity.matrix)
    declared = load_user_dataset(csv_path, npy_path, scales=(0, 100))
    assert declared.values.thresholds.tolist() == [50.0]
    assert torch.allclose(declared.values.ratings[:, 0],
                          (source.values.ratings[:, 0] + 4.3) / 8.6 * 100, atol=1e-12)
    # a text column named otherwise needs exactly one option
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(csv_path.read_text().replace("action,value", "Action Description,value",
                                                    1))
    with pytest.raises(DataError, match="text_column"):
        load_user_dataset(renamed, npy_path, scales=(0, 100))
    ok = load_user_dataset(renamed, npy_path, text_column="Action Description", scales=(0, 100))
    assert ok.items.ids == source.items.texts


# ---------------------------------------------------------------- bad input, one per case


@pytest.fixture
def items_csv(tmp_path):
    return _write(tmp_path / "items.csv", "id,text,v\na,hug someone,3\nb,hit someone,-2\n"
                  "c,help someone,4\n")


def _raises(match_parts, call, *args, **kwargs):
    with pytest.raises(DataError) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(*args, **kwargs)
    message = str(info.value)
    for part in match_parts:
        assert part in message, (part, message)
    assert "\n" not in message and "Fix:" in message
    return message


def test_bad_missing_file(tmp_path):
    _raises(["nope.csv", "file", "existing file"], load_user_dataset, tmp_path / "nope.csv")


def test_bad_missing_column(tmp_path, items_csv):
    path = _write(tmp_path / "x.csv", "id,name\na,hug\n")
    _raises(["x.csv", "line 1", "'text'", "text_column"], load_user_dataset, path)
    _raises(["items.csv", "'w'", "value_columns"], load_user_dataset, items_csv,
            value_columns=["w"])


def test_bad_duplicate_id(tmp_path):
    path = _write(tmp_path / "dup.csv", "id,text\na,hug someone\nb,hit someone\na,x\n")
    _raises(["dup.csv", "line 4", "column 'id'", "already at line 2"], load_user_dataset, path)


def test_bad_unknown_item_in_pair(tmp_path, items_csv):
    pairs = _write(tmp_path / "pairs.csv", "item_a,item_b,similarity\na,b,0.5\nb,zz,0.2\n")
    _raises(["pairs.csv", "line 3", "column 'item_b'", "'zz'"], load_user_dataset, items_csv,
            pairs)


def test_bad_empty_set(tmp_path, items_csv):
    path = _write(tmp_path / "empty.csv", "id,text,v\n")
    _raises(["empty.csv", "line 2", "empty set"], load_user_dataset, path)
    pairs = _write(tmp_path / "nopairs.csv", "item_a,item_b,similarity\n")
    _raises(["nopairs.csv", "empty set"], load_user_dataset, items_csv, pairs)


def test_bad_nan_or_inf(tmp_path, items_csv):
    path = _write(tmp_path / "nan.csv", "id,text,v\na,x,1\nb,y,nan\n")
    _raises(["nan.csv", "line 3", "column 'v'", "finite"], load_user_dataset, path)
    matrix = np.eye(3)
    matrix[0, 2] = matrix[2, 0] = np.inf
    np.save(tmp_path / "inf.npy", matrix)
    _raises(["inf.npy", "cell [0, 2]", "finite"], load_user_dataset, items_csv,
            tmp_path / "inf.npy")


def test_bad_rating_outside_declared_scale(tmp_path, items_csv):
    _raises(["items.csv", "line 3", "column 'v'", "[0, 5]", "-2"], load_user_dataset, items_csv,
            scales=(0, 5))
    pairs = _write(tmp_path / "pairs.csv", "item_a,item_b,similarity\na,b,0.5\nb,c,7\n")
    _raises(["pairs.csv", "line 3", "[0, 5]"], load_user_dataset, items_csv, pairs,
            similarity_scale=(0, 5))


def test_bad_non_square(tmp_path, items_csv):
    np.save(tmp_path / "rect.npy", np.ones((3, 4)))
    _raises(["rect.npy", "shape", "square", "(3, 4)"], load_user_dataset, items_csv,
            tmp_path / "rect.npy")


def test_bad_non_symmetric(tmp_path, items_csv):
    matrix = np.array([[1.0, 0.5, 0.2], [0.4, 1.0, 0.3], [0.2, 0.3, 1.0]])
    np.save(tmp_path / "asym.npy", matrix)
    _raises(["asym.npy", "cell [0, 1] vs cell [1, 0]", "symmetric", "0.5 and 0.4"],
            load_user_dataset, items_csv, tmp_path / "asym.npy")
    np.save(tmp_path / "tiny.npy", matrix + np.triu(np.full((3, 3), 1e-9), 1) - np.triu(
        matrix - matrix.T, 1))          # asymmetry 1e-9: within tolerance, averaged
    loaded = load_user_dataset(items_csv, tmp_path / "tiny.npy", scales=(-5, 5))
    assert torch.equal(loaded.similarity.matrix, loaded.similarity.matrix.T)


def test_bad_diagonal_not_maximal(tmp_path, items_csv):
    matrix = np.array([[1.0, 0.5, 0.2], [0.5, 0.4, 0.3], [0.2, 0.3, 1.0]])
    np.save(tmp_path / "diag.npy", matrix)
    _raises(["diag.npy", "cell [1, 1]", "diagonal", "ignore_diagonal"], load_user_dataset,
            items_csv, tmp_path / "diag.npy")
    ok = load_user_dataset(items_csv, tmp_path / "diag.npy", scales=(-5, 5),
                           ignore_diagonal=True)
    assert ok.similarity.matrix[1, 1] == 1 and ok.similarity.matrix[0, 1] == 0.5


def test_bad_negative_distance(tmp_path, items_csv):
    pairs = _write(tmp_path / "dist.csv", "item_a,item_b,distance\na,b,0.5\nb,c,-0.1\n")
    _raises(["dist.csv", "line 3", "non-negative distance", "-0.1"], load_user_dataset,
            items_csv, pairs, kind="distance")


def test_bad_encoding(tmp_path):
    path = _write(tmp_path / "latin.csv", "id,text\na,hug someone\nb,caf\u00e9 visit\n",
                  encoding="latin-1")
    _raises(["latin.csv", "line 3", "UTF-8", "0xe9"], load_user_dataset, path)


def test_bad_mismatched_item_counts(tmp_path, items_csv):
    np.save(tmp_path / "four.npy", np.eye(4))
    _raises(["four.npy", "items.csv", "3 x 3", "4 x 4"], load_user_dataset, items_csv,
            tmp_path / "four.npy")


def test_bad_pair_listed_twice_with_different_scores(tmp_path, items_csv):
    pairs = _write(tmp_path / "twice.csv",
                   "item_a,item_b,similarity\na,b,0.5\nb,c,0.2\nb,a,0.7\n")
    _raises(["twice.csv", "line 4", "first listed at line 2", "0.7"], load_user_dataset,
            items_csv, pairs)
    same = _write(tmp_path / "same.csv", "item_a,item_b,similarity\na,b,0.5\nb,a,0.5\n")
    assert load_user_dataset(items_csv, same, scales=(-5, 5)).similarity.n_pairs == 1


def test_kind_mismatch_with_column_name(tmp_path, items_csv):
    pairs = _write(tmp_path / "dist.csv", "item_a,item_b,distance\na,b,0.5\n")
    _raises(["dist.csv", "line 1", "kind='distance'"], load_user_dataset, items_csv, pairs)
