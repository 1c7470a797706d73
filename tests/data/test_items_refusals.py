"""Items-CSV cases the audit found accepted or mis-explained (issue 16): numbers Python's
float reads but no ratings file means (`1_2`, Arabic-Indic digits), control characters in a
text, another delimiter, an over-long cell, and a negative --scale on the command line."""

import pytest

from deepalign.data import load_user_dataset
from deepalign.data.__main__ import main as data_main
from deepalign.errors import DataError


def _csv(tmp_path, body: str, name: str = "items.csv"):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize("cell", ["1_2", "\u0661\u0662", "\uff11", "1,5"])
def test_only_plain_ascii_numbers_are_ratings(tmp_path, cell):
    path = _csv(tmp_path, f'id,text,v\na,hug someone,"{cell}"\nb,hit someone,2\n')
    with pytest.raises(DataError, match=r"line 2, column 'v': expected a rating \(ASCII digits"):
        load_user_dataset(path, scales=(0, 100))


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"])
def test_control_characters_in_a_text_are_refused(tmp_path, char):
    path = _csv(tmp_path, f"id,text,v\na,hug{char}someone,1\nb,hit someone,2\n")
    with pytest.raises(DataError, match="line 2, column 'text': expected a text without "
                                        "control characters"):
        load_user_dataset(path, scales=(0, 100))


@pytest.mark.parametrize("sep, word", [(";", "';'"), ("\t", "tabs")])
def test_another_delimiter_is_named(tmp_path, sep, word):
    path = _csv(tmp_path, sep.join(["id", "text", "v"]) + "\n" + sep.join(["a", "hug", "1"])
                + "\n")
    with pytest.raises(DataError, match=f"which holds {word}. Fix: save the file with ','"):
        load_user_dataset(path, scales=(0, 100))


def test_an_over_long_cell_is_named_as_such(tmp_path):
    path = _csv(tmp_path, 'id,text,v\na,"' + "x" * 1_000_000 + '",1\n')
    with pytest.raises(DataError, match="expected cells of at most 131,072 characters, got a "
                                        "longer cell"):
        load_user_dataset(path, scales=(0, 100))


def test_a_negative_scale_on_the_command_line(tmp_path, capsys):
    path = _csv(tmp_path, "id,text,v\na,hug someone,-3\nb,hit someone,2\n")
    assert data_main(["validate", str(path), "--scale", "-4,4"]) == 0
    assert "scale [-4, 4]" in capsys.readouterr().out
    assert data_main(["validate", str(path), "--similarity-scale", "-1,1", "--scale",
                      "-4,4"]) == 0


# ------------------------------------------------------------------ similarity files


def _items(tmp_path):
    return _csv(tmp_path, "id,text,v\na,hug someone,1\nb,hit someone,2\nc,help someone,3\n")


def test_huge_matrix_values_name_the_file(tmp_path):
    import numpy as np

    matrix = np.array([[1e308, -1e308, 0.0], [-1e308, 1e308, 0.0], [0.0, 0.0, 1e308]])
    np.save(tmp_path / "big.npy", matrix)
    with pytest.raises(DataError, match=r"big\.npy: cell \[0, 0\]: expected a similarity "
                                        r"within \+-1e\+300"):
        load_user_dataset(_items(tmp_path), tmp_path / "big.npy", scales=(0, 5))


def test_a_constant_matrix_is_refused(tmp_path):
    import numpy as np

    np.save(tmp_path / "const.npy", np.full((3, 3), 0.5))
    with pytest.raises(DataError, match=r"const\.npy: every cell off the diagonal: .* 0\.5 "
                                        r"everywhere \(a constant matrix\)"):
        load_user_dataset(_items(tmp_path), tmp_path / "const.npy", scales=(0, 5))


def test_a_pairs_header_with_a_misnamed_column_is_read_as_pairs(tmp_path):
    pairs = _csv(tmp_path, "item_a,item_x,similarity\na,b,0.5\nb,c,0.2\n", "pairs.csv")
    with pytest.raises(DataError, match=r"pairs\.csv: header \(line 1\): expected a column "
                                        "'item_b'"):
        load_user_dataset(_items(tmp_path), pairs, scales=(0, 5))


@pytest.mark.parametrize("count", ["2.5", "-1", "0"])
def test_rater_counts_are_whole_numbers(tmp_path, count):
    pairs = _csv(tmp_path, f"item_a,item_b,similarity,n_raters\na,b,0.5,{count}\nb,c,0.2,3\n",
                 "pairs.csv")
    with pytest.raises(DataError, match=r"pairs\.csv: line 2.*n_raters.*expected a whole "
                                        r"count >= 1"):
        load_user_dataset(_items(tmp_path), pairs, scales=(0, 5))


def test_two_items_with_one_text_are_refused(tmp_path):
    path = _csv(tmp_path, "id,text,v\na,hug someone,1\nb,hug someone,2\n")
    with pytest.raises(DataError, match=r"line 3, column 'text': expected a text no other item "
                                        r"has, got 'hug someone', already at line 2"):
        load_user_dataset(path, scales=(0, 5))


def test_a_pairs_file_with_both_score_columns_is_refused(tmp_path):
    pairs = _csv(tmp_path, "item_a,item_b,similarity,distance\na,b,0.2,0.8\n", "pairs.csv")
    with pytest.raises(DataError, match=r"pairs\.csv: header \(line 1\): expected one score "
                                        r"column .* got both a 'similarity' and a 'distance'"):
        load_user_dataset(_items(tmp_path), pairs, scales=(0, 5))


@pytest.mark.parametrize("scale", ["5,0", "0,inf", "1"])
def test_a_bad_scale_on_the_command_line_names_the_option(tmp_path, capsys, scale):
    with pytest.raises(SystemExit) as stop:
        data_main(["validate", str(_items(tmp_path)), "--scale", scale])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "argument --scale: expected" in error and "Fix: give the lowest" in error


def test_a_stray_quote_is_refused_and_a_quoted_one_kept(tmp_path):
    stray = _csv(tmp_path, 'id,text,v\na,hug "someone,1\nb,hit someone,2\n')
    with pytest.raises(DataError, match="line 2, column 'text': expected quotes only around a "
                                        "whole cell"):
        load_user_dataset(stray, scales=(0, 100))
    quoted = _csv(tmp_path, 'id,text,v\na,hug someone,1\nb,"say ""hi""",2\n', "quoted.csv")
    assert load_user_dataset(quoted, scales=(0, 100)).items.texts[1] == 'say "hi"'
