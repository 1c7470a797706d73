"""Similarity files (.npy / CSV matrix / pairs CSV) given to `deepalign.data validate`."""

from __future__ import annotations

import io

import numpy as np

from audit.harness import Case, names_for

ITEMS = "id,text,v\na,hug someone,1\nb,hit someone,2\nc,help someone,3\nd,eat lunch,4\n"
GOOD = np.array([[1.0, 0.2, 0.8, 0.4], [0.2, 1.0, 0.1, 0.3],
                 [0.8, 0.1, 1.0, 0.5], [0.4, 0.3, 0.5, 1.0]])


def _npy(array: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **save)
    return buffer.getvalue()


def _with(**cells) -> np.ndarray:
    matrix = GOOD.copy()
    for key, value in cells.items():
        i, j = (ord(key[0]) - 97, ord(key[1]) - 97)
        matrix[i, j] = matrix[j, i] = value
    return matrix


def _matrix_csv(matrix, header=True, ids="abcd") -> str:
    rows = [",".join(["id", *ids])] if header else []
    for name, row in zip(ids, matrix):
        rows.append(",".join([name, *map(str, row)]))
    return "\n".join(rows) + "\n"


def _pairs(*rows: str, header="item_a,item_b,similarity") -> str:
    return header + "\n" + "".join(row + "\n" for row in rows)


PAIRS = ("a,b,0.2", "a,c,0.8", "b,d,0.3", "c,d,0.5")


def _case(id, content, *args, file="sim.npy", names=(), expect="refuse", note=""):
    files = {"items.csv": ITEMS}
    if content is not None:
        files[file] = content
    return Case(id, ("deepalign.data", "validate", "items.csv", "--similarity", file,
                     "--scale", "0,5", *args),
                files=files, names=names_for(file, names), expect=expect, note=note)


def _directory(path, fx):
    path.mkdir()


CASES = [
    _case("valid-npy", _npy(GOOD), expect="accept"),
    _case("valid-matrix-csv", _matrix_csv(GOOD), file="sim.csv", expect="accept"),
    _case("valid-matrix-csv-no-header", _matrix_csv(GOOD).split("\n", 1)[1].replace(
        "a,", "", 1).replace("\nb,", "\n").replace("\nc,", "\n").replace("\nd,", "\n"),
        file="sim.csv", expect="accept"),
    _case("valid-pairs", _pairs(*PAIRS), file="pairs.csv", expect="accept"),
    _case("valid-pairs-raters", _pairs("a,b,0.2,3", "a,c,0.8,5",
                                       header="item_a,item_b,similarity,n_raters"),
          file="pairs.csv", expect="accept"),
    _case("valid-distance", _npy(1 - GOOD), "--kind", "distance", expect="accept"),
    _case("valid-int-matrix", _npy((GOOD * 10).astype(np.int64)), "--similarity-scale",
          "0,10", expect="accept"),
    _case("valid-fortran-order", _npy(np.asfortranarray(GOOD)), expect="accept"),
    _case("valid-big-endian", _npy(GOOD.astype(">f8")), expect="accept"),
    _case("valid-ignore-diagonal", _npy(GOOD * (1 - np.eye(4))), "--ignore-diagonal",
          expect="accept"),
    _case("not-square", _npy(GOOD[:3])),
    _case("wrong-size", _npy(GOOD[:3, :3])),
    _case("one-dimensional", _npy(GOOD[0])),
    _case("three-dimensional", _npy(GOOD[None])),
    _case("not-symmetric", _npy(GOOD + np.triu(np.full((4, 4), 0.05), 1))),
    _case("nan-cell", _npy(_with(ab=np.nan)), note="NaN is 'unobserved' only in a pairs file"),
    _case("inf-cell", _npy(_with(ab=np.inf))),
    _case("huge-cells", _npy(_with(ab=1e308, cd=-1e308)), "--similarity-scale", "-1e308,1e308"),
    _case("constant-matrix", _npy(np.full((4, 4), 0.5))),
    _case("all-nan", _npy(np.full((4, 4), np.nan))),
    _case("complex-dtype", _npy(GOOD.astype(np.complex128))),
    _case("object-dtype-pickle", _npy(GOOD.astype(object), allow_pickle=True),
          note="must never unpickle"),
    _case("string-dtype", _npy(GOOD.astype(str))),
    _case("bool-dtype", _npy(GOOD > 0.4)),
    _case("truncated-npy", _npy(GOOD)[:-20]),
    _case("random-bytes-npy", bytes(range(256))),
    _case("empty-npy", b""),
    _case("npz-archive", b"PK\x03\x04" + bytes(100)),
    _case("outside-scale", _npy(_with(ab=3.0))),
    _case("negative-with-default-scale", _npy(_with(ab=-0.5)), expect="accept",
          note="an undeclared scale is the observed range, with a note"),
    _case("similarity-scale-malformed", _npy(GOOD), "--similarity-scale", "1",
          names=("--similarity-scale",)),
    _case("similarity-scale-reversed", _npy(GOOD), "--similarity-scale", "1,0",
          names=("--similarity-scale",)),
    _case("csv-unknown-id-header", _matrix_csv(GOOD, ids="abcz"), file="sim.csv"),
    _case("csv-ragged-row", _matrix_csv(GOOD).replace(",0.5\n", "\n", 1), file="sim.csv"),
    _case("csv-word-cell", _matrix_csv(GOOD).replace("0.2", "low", 1), file="sim.csv"),
    _case("csv-empty-cell", _matrix_csv(GOOD).replace(",0.2,", ",,", 1), file="sim.csv"),
    _case("csv-semicolons", _matrix_csv(GOOD).replace(",", ";"), file="sim.csv"),
    _case("csv-latin-1", _matrix_csv(GOOD).replace("id", "\xe9").encode("latin-1"),
          file="sim.csv"),
    _case("csv-too-many-rows", _matrix_csv(np.vstack([GOOD, GOOD[:1]]), ids="abcda"),
          file="sim.csv"),
    _case("pairs-misnamed-header", _pairs(*PAIRS, header="item_a,item_x,similarity"),
          file="pairs.csv"),
    _case("pairs-unknown-item", _pairs("a,b,0.2", "a,zz,0.8"), file="pairs.csv",
          names=("zz",)),
    _case("pairs-self-pair", _pairs("a,a,1.0", "a,b,0.2"), file="pairs.csv"),
    _case("pairs-duplicate", _pairs("a,b,0.2", "a,b,0.2"), file="pairs.csv", expect="accept",
          note="identical repeats are merged, with a note"),
    _case("pairs-conflicting-reverse", _pairs("a,b,0.2", "b,a,0.9"), file="pairs.csv"),
    _case("pairs-no-score-column", _pairs("a,b", "a,c", header="item_a,item_b"),
          file="pairs.csv"),
    _case("pairs-both-score-columns", _pairs("a,b,0.2,0.8",
                                             header="item_a,item_b,similarity,distance"),
          file="pairs.csv"),
    _case("pairs-distance-for-similarity", _pairs("a,b,0.8", header="item_a,item_b,distance"),
          file="pairs.csv"),
    _case("pairs-word-score", _pairs("a,b,high", "a,c,0.8"), file="pairs.csv"),
    _case("pairs-nan-score", _pairs("a,b,nan", "a,c,0.8"), file="pairs.csv"),
    _case("pairs-fractional-raters", _pairs("a,b,0.2,2.5",
                                            header="item_a,item_b,similarity,n_raters"),
          file="pairs.csv"),
    _case("pairs-zero-raters", _pairs("a,b,0.2,0",
                                      header="item_a,item_b,similarity,n_raters"),
          file="pairs.csv"),
    _case("pairs-negative-raters", _pairs("a,b,0.2,-1",
                                          header="item_a,item_b,similarity,n_raters"),
          file="pairs.csv"),
    _case("pairs-header-only", _pairs(), file="pairs.csv"),
    _case("missing-file", None, file="gone.npy"),
    _case("a-directory", _directory, file="simdir.npy"),
]
