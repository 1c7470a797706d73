"""`python -m deepalign.data`: list, show, validate."""

import os
import subprocess
import sys

import numpy as np

from deepalign.data.__main__ import main

EXPECTED = {  # name: (items, observed pairs, values)
    "spa-verb": ("825", "29721", "-"),
    "spa-verb-act": ("175", "4647", "1 (act_evaluation)"),
    "dillion-morality": ("480", "-", "1 (morality)"),
    "mfv": ("132", "-", "8 (acceptability"),
    "activity-pairs": ("1420", "996", "-"),
    "sts-captions": ("3025", "1748", "-"),
    "ethics-justice": ("2704", "-", "1 (reasonable)"),
    "ethics-commonsense-short": ("2109", "-", "1 (acceptable)"),
    "act-behaviors": ("853", "-", "3 (act_evaluation"),
}


def test_list_prints_every_set_with_counts_and_licence(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "items", "pairs", "values", "licence"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(EXPECTED)
    for name, (items, pairs, values) in EXPECTED.items():
        cells = rows[name].split()
        assert cells[1] == items and cells[2] == pairs
        assert values in rows[name]
    assert "CC BY" in rows["spa-verb"] and "Apache-2.0" in rows["dillion-morality"]
    assert "MIT" in rows["ethics-justice"]


def test_show_prints_summary_and_five_examples(capsys):
    assert main(["show", "dillion-morality"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dillion-morality: 480 items")
    assert "threshold 0" in out
    examples = out.split("examples:")[1].strip().splitlines()
    assert len(examples) == 5 and "morality=" in examples[0]


def test_show_unknown_name_exits_2(capsys):
    assert main(["show", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nope" in err[0]


def test_validate_good_files(tmp_path, capsys):
    items = tmp_path / "items.csv"
    items.write_text("id,text,morality\na,hug someone,80\nb,hit someone,10\nc,help someone,90\n")
    matrix = np.array([[1.0, 0.2, 0.9], [0.2, 1.0, 0.1], [0.9, 0.1, 1.0]])
    np.save(tmp_path / "sim.npy", matrix)
    code = main(["validate", str(items), "--similarity", str(tmp_path / "sim.npy"),
                 "--scale", "0,100"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("ok: items: 3 items")
    assert "3 observed pairs" in out and "threshold 50" in out and "1 items below" in out


def test_validate_malformed_file_exits_2_with_one_line(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,text,morality\na,hug someone,80\na,hit someone,10\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "deepalign.data", "validate", str(items)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    err = result.stderr.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: ") and "items.csv" in err[0] and "line 3" in err[0]
