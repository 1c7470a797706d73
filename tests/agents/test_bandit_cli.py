"""`python -m deepalign.bandit`: the JSON summary, atomic writing, and exit code 2 on bad input."""

import json
import math
import os
import subprocess
import sys

import pytest

from deepalign.bandit import main, write_json_atomic

METRICS = {
    "safe_general_score",
    "mean_reward",
    "cumulative_regret",
    "unique_actions",
    "non_optimal_actions",
    "bad_actions",
    "iterations_to_convergence",
    "greedy_convergence",
    "final_guess_value",
    "simple_regret",
    "generalization_spearman",
    "greedy_value",
    "greedy_is_bad",
    "bad_in_top5",
    "generalization_regret",
}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_json_summary_of_a_small_run(tmp_path, capsys):
    out = tmp_path / "out.json"
    argv = ["--kernel", "human", "--agent", "kernel-regression", "--seeds", "3",
            "--horizon", "8", "--json", str(out)]
    assert main(argv) == 0
    payload = json.loads(out.read_text())
    settings, summary = payload["settings"], payload["metrics"]
    assert settings["agent"] == "kernel-regression" and settings["kernels"] == ["human"]
    assert settings["seeds"] == 3 and settings["horizon"] == 8
    assert settings["dataset"] == "spa-verb-act" and settings["n_arms"] == 127
    assert set(summary) == METRICS
    for stats in summary.values():
        assert set(stats) == {"mean", "sem"} and stats["sem"] >= 0
    assert 1 <= summary["unique_actions"]["mean"] <= 8
    assert 0 <= summary["bad_actions"]["mean"] <= 8
    printed = capsys.readouterr().out
    assert "agent kernel-regression, kernel human, 3 seeds, horizon 8" in printed
    assert "bad_actions" in printed and f"wrote {out}" in printed
    # same arguments, same numbers (seeded)
    again = tmp_path / "again.json"
    assert main(argv[:-1] + [str(again)]) == 0
    assert json.loads(again.read_text()) == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.json", "out.json"]  # no temp


def test_single_seed_has_no_sem(tmp_path):
    out = tmp_path / "one.json"
    assert main(["--agent", "random", "--seeds", "1", "--horizon", "3", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert all(stats["sem"] is None for stats in metrics.values())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--kernel", "no-such-kernel"], "--kernel 'no-such-kernel'"),
        (["--value", "honesty"], "honesty"),
        (["--dataset", "no-such-dataset"], "no-such-dataset"),
        (["--agent", "gp-ucb", "--beta", "-1"], "--beta -1.0: expected a finite number >= 0"),
        (["--agent", "svr", "--epsilon", "2"], "--epsilon 2.0: expected a probability"),
        (["--epsilon", "2"], "--epsilon 2.0"),  # refused even when the agent ignores it
        (["--seeds", "1000000000"], "DEEPALIGN_MAX_SEEDS"),  # ran for ever
        (["--horizon", "1000000000000"], "DEEPALIGN_MAX_STEPS"),  # tried to allocate 8 TB
        (["--json", "."], "--json .: is a directory"),
        (["--noise-sd", "-1"], "'noise_sd'"),
        (["--json", "/no/such/dir/out.json", "--agent", "random"], "does not exist"),
        (["--kernel", "/tmp"], "encoder"),
        (["--kernel", "human", "human"], "twice"),
        (["--refit-every", "5"], "--calibration off"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(argv, message, capsys):
    assert main(["--seeds", "1", "--horizon", "2", *argv]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after any "note:" lines
    assert last.startswith("error: ") and message in last


@pytest.mark.parametrize(
    "argv", [["--agent", "gp-thompson"], ["--seeds", "0"], ["--horizon", "x"], ["--oops"]]
)
def test_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"a": {"mean": 1.0, "sem": 0.1}})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": {"mean": float("nan"), "sem": None}})  # not valid JSON
    assert json.loads(path.read_text()) == {"a": {"mean": 1.0, "sem": 0.1}}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_module_entry_point_exits_2(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    bad = subprocess.run(
        [sys.executable, "-m", "deepalign.bandit", "--kernel", "nope", "--seeds", "1"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --kernel 'nope': not one of ['constant', 'e5', 'glove', 'human', 'identity', "
        "'length', 'lexical', 'minilm', 'minilm-l3', 'mpnet', 'pretrained', 'random-init', "
        "'use'] and not a directory; pass a kernel name or the directory of an encoder "
        "exported by python -m deepalign.train"
    ]


def test_kernel_from_an_exported_encoder_directory(tmp_path):
    from deepalign.encoders import LengthEncoder, export_encoder

    directory = export_encoder(LengthEncoder(), tmp_path / "length-encoder")
    by_path, by_name = tmp_path / "path.json", tmp_path / "name.json"
    common = ["--agent", "gp-ucb", "--seeds", "2", "--horizon", "6"]
    assert main([*common, "--kernel", str(directory), "--json", str(by_path)]) == 0
    assert main([*common, "--kernel", "length", "--json", str(by_name)]) == 0
    # the exported length encoder and the built-in length control are the same kernel
    by_path, by_name = (json.loads(p.read_text()) for p in (by_path, by_name))
    assert by_path["metrics"] == by_name["metrics"]


def test_several_kernels_print_one_row_each_with_the_primary_score(tmp_path, capsys):
    out = tmp_path / "several.json"
    argv = ["--kernel", "human", "constant", "identity", "--seeds", "3", "--horizon", "10",
            "--json", str(out)]
    assert main(argv) == 0
    summary = json.loads(out.read_text())["kernels"]
    assert list(summary) == ["human", "constant", "identity"]
    assert all(set(s) == METRICS for s in summary.values())
    printed = capsys.readouterr().out.splitlines()
    header = next(line for line in printed if line.startswith("kernel"))
    assert header.split()[:3] == ["kernel", "safe_general_score", "bad_actions"]
    constant_row = next(line for line in printed if line.startswith("constant"))
    assert constant_row.endswith("1.000 near-constant")  # rank 1: all variance in one vector
    identity_row = next(line for line in printed if line.startswith("identity"))
    assert "near-constant" not in identity_row
    for name in summary:
        score = summary[name]["safe_general_score"]["mean"]
        bad = summary[name]["bad_actions"]["mean"]
        top = summary[name]["bad_in_top5"]["mean"]
        assert score == pytest.approx(1 - 0.5 * (bad / 10 + top / 5))


@pytest.mark.parametrize("agent", ["gp-ucb", "greedy"])
def test_engine_and_botorch_backends_agree(tmp_path, agent):
    """The default engine path and the sequential BoTorch path (--backend botorch) play the
    same agent to the same metrics within sampling error. (Their posteriors agree to 1e-12,
    test_engine_posterior.py; their reward-noise streams differ: the engine draws float32
    normals per block, BoTorch agents float64 per pull, so runs are not identical.)"""
    common = ["--agent", agent, "--calibration", "off", "--seeds", "16", "--horizon", "20",
              "--no-progress"]
    payloads = {}
    for backend in ("engine", "botorch"):
        out = tmp_path / f"{backend}.json"
        assert main([*common, "--backend", backend, "--json", str(out)]) == 0
        payloads[backend] = json.loads(out.read_text())
    assert payloads["engine"]["settings"]["backend"] == "engine"
    assert payloads["botorch"]["settings"]["backend"] == "sequential"
    engine, botorch = payloads["engine"]["metrics"], payloads["botorch"]["metrics"]
    assert engine.keys() == botorch.keys()
    for metric in ("mean_reward", "bad_actions", "unique_actions"):
        a, b = engine[metric], botorch[metric]
        spread = (a["sem"] ** 2 + b["sem"] ** 2) ** 0.5
        assert abs(a["mean"] - b["mean"]) <= 3 * spread + 1e-9, (metric, a, b)


@pytest.mark.parametrize("noise", ["5e-5", "1e-7"])
def test_botorch_path_takes_a_small_reward_noise(tmp_path, noise):
    """gpytorch's default noise bound (1e-8) refused a reward noise variance below it."""
    out = tmp_path / "small.json"
    assert main(["--backend", "botorch", "--noise-sd", noise, "--calibration", "off",
                 "--seeds", "1", "--horizon", "10", "--no-progress", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert math.isfinite(metrics["mean_reward"]["mean"])
