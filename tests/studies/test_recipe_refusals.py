"""`deepalign.study` refuses bad recipes before writing anything (issue 16): sizes beyond
their limits, duplicate or colliding levels, bad devices, negative seeds, non-finite noise,
duplicated YAML keys, empty lists, --threads 0, a negative split seed. Exit 2, a message
naming the recipe (or option) and the fix, and no --out directory."""

from pathlib import Path

import pytest

from deepalign.study import main as study_main

BASE = """name: t
seeds: 2
horizon: 10
synthetic:
  dataset: spa-verb-act
  values: [act_evaluation]
  levels: 2
  agents: [gp-ts]
"""

CASES = {
    "huge horizon": (BASE.replace("horizon: 10", "horizon: 1000000000000"),
                     ["'horizon' is 1000000000000, above the limit of 100000 steps",
                      "DEEPALIGN_MAX_STEPS"]),
    "huge seeds": (BASE.replace("seeds: 2", "seeds: 1000000000"),
                   ["'seeds' is 1000000000, above the limit", "DEEPALIGN_MAX_SEEDS"]),
    "duplicate levels": (BASE.replace("levels: 2", "levels: [0.5, 0.5]"),
                         ["lists level 0.5 twice"]),
    "colliding levels": (BASE.replace("levels: 2", "levels: [0.1234567, 0.1234568]"),
                         ["lists level 0.123457 twice", "6 significant digits"]),
    "bogus device": (BASE + "device: bogus\n", ["key 'device'", "'bogus' is not a torch device"]),
    "cuda without cuda": (BASE + "device: cuda\n", ["asks for CUDA"]),
    "negative seed": (BASE.replace("seeds: 2", "seeds: [0, -1]"), ["seeds >= 0"]),
    "infinite noise": (BASE + "noise: .inf\n", ["'noise' should be in (0, 100]"]),
    "overflowing noise": (BASE + "noise: 1.0e+308\n", ["'noise' should be in (0, 100]"]),
    "an exponent YAML reads as text": (BASE + "noise: 1e-3\n", [
        "'noise' should be float or null but got str ('1e-3')", "write 1.0e-3"]),
    "every item held out": (BASE + "heldout_fraction: 0.999\n", [
        "key 'heldout_fraction' 0.999 holds out all", "leaving no arm to pull"]),
    "threads past any machine": (BASE, ["--threads: expected an int in 1..1024"]),
    "duplicated key": (BASE + "horizon: 20\n", ["key 'horizon' appears twice",
                                               "first at line 3"]),
    "empty values": (BASE.replace("values: [act_evaluation]", "values: []"),
                     ["'synthetic.values' is an empty list"]),
    "empty agents": (BASE.replace("agents: [gp-ts]", "agents: []"),
                     ["'synthetic.agents' is an empty list"]),
    "negative split seed": (BASE + "split_seed: -1\n", ["'split_seed' should be >= 0"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_recipe_is_refused_and_writes_nothing(tmp_path, capsys, case):
    import torch

    if case == "cuda without cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    text, parts = CASES[case]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    out = tmp_path / "out"
    threads = ["--threads", "100000"] if case == "threads past any machine" else []
    assert study_main([str(recipe), "--out", str(out), *threads]) == 2
    error = capsys.readouterr().err
    for part in parts:
        assert part in error, (part, error)
    assert "Traceback" not in error
    assert not out.exists()


@pytest.mark.parametrize("argv, part", [
    (["--threads", "0"], "--threads: expected an int in 1..1024"),
    (["--device", "bogus"], "--device: 'bogus' is not a torch device"),
])
def test_bad_options_are_refused_and_write_nothing(tmp_path, capsys, argv, part):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE)
    out = tmp_path / "out"
    assert study_main([str(recipe), "--out", str(out), *argv]) == 2
    assert part in capsys.readouterr().err
    assert not out.exists()


def test_a_limit_can_be_raised(tmp_path, monkeypatch):
    from deepalign.studies.config import load_study_config

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE.replace("horizon: 10", "horizon: 200000"))
    monkeypatch.setenv("DEEPALIGN_MAX_STEPS", "300000")
    assert load_study_config(recipe).horizon == 200000


def test_two_studies_on_one_out_the_second_is_refused(tmp_path, capsys):
    import os

    from deepalign.studies.lock import LOCK_NAME, study_lock

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE)
    out = tmp_path / "out"
    with study_lock(out):  # another study holds the directory
        assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 2
        error = capsys.readouterr().err
        assert f"another `python -m deepalign.study` (pid {os.getpid()})" in error
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing else written
    # once it is released, the study runs, and the lock file does not block a resume
    assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 0
    assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 0
    assert "0 runs done, 8 already written" in capsys.readouterr().out


def test_a_read_only_output_directory(tmp_path, capsys):
    import os
    import stat

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE)
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    # root writes into read-only directories; /sys refuses even root (EPERM)
    out = Path("/sys/deepalign_out") if os.geteuid() == 0 else parent / "out"
    if os.geteuid() == 0 and not Path("/sys").is_dir():
        pytest.skip("no read-only place for root on this machine")
    try:
        assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 2
    finally:
        parent.chmod(stat.S_IRWXU)
    error = capsys.readouterr().err
    assert f"{out}: cannot write" in error and "Fix: make the directory writable" in error
    assert "Traceback" not in error


def test_a_full_disk_leaves_no_temporary_part(tmp_path, capsys, monkeypatch):
    import errno

    from deepalign.studies import results

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE)
    out = tmp_path / "out"
    real_open = open

    def full(path, mode="r", *args, **kwargs):  # the disk fills while a part is written
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode and str(path).endswith(".tmp") and "parts" in str(path):
            handle.close()
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return handle

    monkeypatch.setattr(results, "open", full, raising=False)
    assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "cannot write (No space left on device). Fix: free space on that disk" in error
    assert not [p for p in out.rglob("*.tmp")]  # no 0-byte temporary part left behind
    monkeypatch.undo()
    assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 0  # resumes


def test_a_grid_too_large_is_refused_before_it_is_built(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE.replace("seeds: 2", "seeds: 90000").replace("levels: 2",
                                                                        "levels: 5000"))
    out = tmp_path / "out"
    assert study_main([str(recipe), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "above the limit of 10000000 cells" in error and "DEEPALIGN_MAX_CELLS" in error
    assert not out.exists()


def test_device_override_wins_over_the_recipe(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE + "device: cuda\n")
    assert study_main([str(recipe), "--out", str(tmp_path / "out"), "--device", "cpu",
                       "--no-progress"]) == 0


def test_a_huge_int_levels_is_refused_without_expanding_it(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE.replace("levels: 2", "levels: 1000000000000"))
    assert study_main([str(recipe), "--out", str(tmp_path / "out")]) == 2
    assert "'synthetic.levels' is 1000000000000, above the limit" in capsys.readouterr().err
