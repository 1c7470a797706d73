"""Random bytes and rows into the file readers: only DataError may come out."""

import csv
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepalign.data import load_user_dataset
from deepalign.data.csv_table import read_csv_table
from deepalign.data.matrix_file import read_matrix_file
from deepalign.errors import DataError

WORK = Path(tempfile.mkdtemp(prefix="deepalign-fuzz-"))
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

CELL = st.one_of(
    st.text(alphabet='ab ,"\n\r\t;0123456789.-eE\x00\u00e9', max_size=8),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "", " ", "0", "1", "-1", "0.5", "id",
                     "text", "item_a", "item_b", "similarity", "distance", "n_raters"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
ROWS = st.lists(st.lists(CELL, min_size=0, max_size=5), min_size=0, max_size=6)


def _only_data_error(call, *args, **kwargs):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(*args, **kwargs)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_into_csv_reader(blob):
    path = WORK / "blob.csv"
    path.write_bytes(blob)
    _only_data_error(read_csv_table, path)
    _only_data_error(load_user_dataset, path)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_into_matrix_readers(blob):
    for name in ("blob.npy", "blob_matrix.csv"):
        path = WORK / name
        path.write_bytes(blob)
        _only_data_error(read_matrix_file, path)


@SETTINGS
@given(ROWS, st.sampled_from([None, "item_a"]))
def test_random_rows_into_items_csv(rows, first_header):
    path = WORK / "rows.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        for row in rows:
            writer.writerow(row)
    _only_data_error(load_user_dataset, path)
    _only_data_error(load_user_dataset, path, id_column="id", text_column="text",
                     value_columns=["similarity"], scales=(0, 1))


@SETTINGS
@given(ROWS, st.sampled_from(["similarity", "distance"]))
def test_random_rows_into_similarity_files(rows, kind):
    items = WORK / "items.csv"
    items.write_text("id,text\n0,a b\n1,c d\n2,e f\n", encoding="utf-8")
    pairs = WORK / "pairs.csv"
    with open(pairs, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["item_a", "item_b", kind, "n_raters"])
        for row in rows:
            writer.writerow(row)
    _only_data_error(load_user_dataset, items, pairs, kind=kind)
    matrix = WORK / "matrix.csv"
    with open(matrix, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    _only_data_error(load_user_dataset, items, matrix, kind=kind)


@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=9, max_size=9),
       st.sampled_from(["similarity", "distance"]), st.booleans())
def test_random_npy_matrices(values, kind, ignore_diagonal):
    items = WORK / "items3.csv"
    items.write_text("id,text\n0,a b\n1,c d\n2,e f\n", encoding="utf-8")
    path = WORK / "m.npy"
    np.save(path, np.array(values).reshape(3, 3))
    _only_data_error(load_user_dataset, items, path, kind=kind, ignore_diagonal=ignore_diagonal)
