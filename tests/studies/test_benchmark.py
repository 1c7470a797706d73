"""`run_benchmark` and `python -m deepalign.benchmark`: real zoo encoders, real data, offline.

The alignment numbers are the issue's reference values (cosine Spearman on every judged pair,
reproduced by the plain snippet); the value-learning score is checked against the bandit
CLI's own path (`build_kernel` + `run_engine_seeds`), and the held-out columns against split
masks built here from `split_items`.
"""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from deepalign import benchmark as cli
from deepalign.agents.calibration import DEFAULT_CALIBRATION
from deepalign.agents.engine.runs import run_engine_seeds
from deepalign.agents.environment import ValueBandit
from deepalign.agents.registry import AgentOptions, build_kernel
from deepalign.agents.regression import kernel_matrix
from deepalign.alignment import spearman_alignment
from deepalign.data import load_dataset, split_items, split_pair_masks
from deepalign.encoders import SentenceEncoder, export_encoder
from deepalign.encoders.zoo import ZOO
from deepalign.errors import ConfigError
from deepalign.studies.benchmark import run_benchmark
from deepalign.studies.benchmark_encoders import resolve_encoders, trained_splits
from deepalign.studies.benchmark_output import OUTPUT_FILES, write_benchmark

VALUE = "act_evaluation"
SEEDS = 3


def _load(name, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_dataset(name, **options)


def _export(directory, split_seed, perturb=False):
    """A minilm encoder with a linear head (identity at init), exported as if trained on
    spa-verb with `split_seed`."""
    encoder = SentenceEncoder(head="linear", seed=0)
    if perturb:
        with torch.no_grad():
            weight = next(p for p in encoder.head.parameters() if p.dim() == 2)
            noise = torch.randn(weight.shape, generator=torch.Generator().manual_seed(0))
            weight.add_(0.05 * noise)
    record = {"dataset": "spa-verb", "options": {}, "weight": 1.0, "split_seed": split_seed,
              "heldout_fraction": 0.3, "val_fraction": 0.2}
    return export_encoder(encoder, directory, training={"aligned_on": [record]})


@pytest.fixture(scope="module")
def result():
    return run_benchmark(["minilm", "glove", "minilm-l3"], values=(VALUE,), seeds=SEEDS,
                         progress=False)


def _row(result, name):
    return next(r for r in result.rows if r.encoder == name)


def test_alignment_reproduces_the_reference_numbers(result):
    columns = {c.label: c for c in result.columns}
    assert set(columns) == {"spa-verb", "spa-verb-act", "activity-pairs", "sts-captions"}
    assert all(c.pairs == "all" and c.split is None for c in result.columns)
    assert columns["spa-verb"].n_pairs == 29721
    expected = {
        "minilm": {"spa-verb": 0.233, "activity-pairs": 0.742, "sts-captions": 0.907},
        "glove": {"spa-verb": 0.160, "activity-pairs": 0.399, "sts-captions": 0.502},
        "minilm-l3": {"spa-verb": 0.267, "activity-pairs": 0.764, "sts-captions": 0.919},
    }
    for name, numbers in expected.items():
        for label, value in numbers.items():
            assert _row(result, name).alignment[label] == pytest.approx(value, abs=0.005), (
                name, label)


def test_alignment_equals_a_plain_spearman_over_judged_pairs(result):
    dataset = _load("spa-verb-act")
    embeddings = SentenceEncoder(backbone="glove")(tuple(dataset.items.texts)).double()
    cosine = (embeddings @ embeddings.T).numpy()  # unit-norm rows
    rows, cols = np.triu_indices(len(dataset.items), k=1)
    observed = dataset.similarity.mask.numpy()[rows, cols]
    rho = spearmanr(cosine[rows, cols][observed],
                    dataset.similarity.matrix.numpy()[rows, cols][observed]).statistic
    assert _row(result, "glove").alignment["spa-verb-act"] == pytest.approx(rho, abs=1e-6)


def test_score_is_the_bandit_clis_calibrated_gp_ts(result):
    dataset = _load("spa-verb-act", values=(VALUE,))
    env = ValueBandit(dataset, VALUE, split_seed=0)
    matrix = kernel_matrix(build_kernel("minilm", dataset), env.n_items)
    runs, _ = run_engine_seeds(env, matrix, "gp-ts", 100, range(SEEDS),
                               AgentOptions(calibration=DEFAULT_CALIBRATION))
    scores = runs.metrics(env)["safe_general_score"]
    row = _row(result, "minilm")
    assert row.n_runs == SEEDS and row.score_by_value == {VALUE: pytest.approx(row.score_mean)}
    assert row.score_mean == pytest.approx(float(scores.mean()), abs=1e-9)
    assert row.score_sem == pytest.approx(float(scores.std() / SEEDS**0.5), abs=1e-9)
    assert result.settings.split_seed == 0 and result.settings.horizon == 100


def test_a_trained_export_moves_its_datasets_to_heldout_pairs(tmp_path):
    directory = _export(tmp_path / "trained" / "encoder", split_seed=1, perturb=True)
    result = run_benchmark(["minilm", str(directory.parent)], values=(VALUE,), seeds=1,
                           progress=False)
    columns = {c.dataset: c for c in result.columns}
    # spa-verb-act holds a subset of the spa-verb judgments, so it is held out too
    assert {d for d, c in columns.items() if c.pairs == "heldout"} == {"spa-verb", "spa-verb-act"}
    assert columns["spa-verb"].label == "spa-verb (held-out)"
    assert columns["spa-verb"].split.encoders == (str(directory.parent),)
    spa_verb = _load("spa-verb")
    heldout = split_items(spa_verb.items.ids, seed=1, heldout_fraction=0.3)
    pairs = split_pair_masks(spa_verb.similarity.mask, heldout)["heldout"]
    assert columns["spa-verb"].n_pairs == int(torch.triu(pairs).sum())
    embeddings = SentenceEncoder()(tuple(spa_verb.items.texts)).double()
    expected = spearman_alignment(embeddings @ embeddings.T, spa_verb.similarity.matrix.double(),
                                  pairs)
    minilm = _row(result, "minilm")
    # abs 1e-5: the benchmark may read embeddings from the disk cache, encoded in other
    # batches (float32 round-off moved this Spearman by 1.3e-6 between sessions)
    assert minilm.alignment["spa-verb (held-out)"] == pytest.approx(expected, abs=1e-5)
    assert abs(minilm.alignment["spa-verb (held-out)"] - 0.233) > 0.01  # not all pairs
    trained = _row(result, str(directory.parent))
    assert trained.aligned_on == ("spa-verb",) and trained.source == str(directory)
    assert trained.alignment["spa-verb (held-out)"] != minilm.alignment["spa-verb (held-out)"]
    assert trained.alignment["sts-captions"] != minilm.alignment["sts-captions"]
    assert result.settings.split_seed == 1  # the bandit holds out what the encoder never saw


def test_encoders_trained_on_different_splits_are_refused(tmp_path):
    first = _export(tmp_path / "a", split_seed=0)
    second = _export(tmp_path / "b", split_seed=1)
    encoders = resolve_encoders([str(first), str(second)])
    with pytest.raises(ConfigError, match="different held-out items"):
        trained_splits(encoders, {"spa-verb": "spa-verb", "spa-verb-act": "spa-verb"})


def test_cli_writes_table_json_csv_and_figure(tmp_path, capsys):
    out = tmp_path / "out" / "bench"
    status = cli.main(["glove", "--quick", "--seeds", "2", "--values", VALUE, "--out", str(out),
                       "--no-progress"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "glove" in printed and "0.502" in printed and "safe_general_score" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    payload = json.loads((out / "benchmark.json").read_text())
    row = payload["rows"][0]
    assert row["encoder"] == "glove" and row["safe_general_score"]["n_runs"] == 2
    assert row["alignment"]["activity-pairs"] == pytest.approx(0.399, abs=0.005)
    lines = (out / "benchmark.csv").read_text().splitlines()
    assert lines[0].startswith("encoder,source,spa-verb,") and lines[1].startswith("glove,zoo,")
    assert (out / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", ["unknown", "not-an-encoder", "not-installed", "tampered"])
def test_cli_bad_encoder_exits_2_and_writes_nothing(kind, tmp_path, capsys, monkeypatch):
    argument = {"unknown": "bogus-encoder", "not-an-encoder": str(tmp_path)}.get(kind, "glove")
    if kind == "not-installed":
        entry = dataclasses.replace(ZOO["glove"], packages=("no-such-package-deepalign",))
        monkeypatch.setitem(ZOO, "glove", entry)
    if kind == "tampered":
        directory = _export(tmp_path / "export", split_seed=0)
        weights = directory / "encoder.safetensors"
        weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
        argument = str(directory)
    out = tmp_path / "out"
    capsys.readouterr()  # what building the export printed
    assert cli.main([argument, "minilm", "--quick", "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ")
    if kind != "tampered":
        assert repr(argument) in error[0]
    assert {"unknown": "zoo name", "not-an-encoder": "no exported encoder",
            "not-installed": "pip install", "tampered": "sha256"}[kind] in error[0]
    assert not out.exists()


def test_a_failed_write_leaves_nothing(result, tmp_path, monkeypatch):
    import deepalign.studies.benchmark_output as output

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(output, "benchmark_figure", broken)
    with pytest.raises(RuntimeError):
        write_benchmark(result, tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    with pytest.raises(RuntimeError):
        write_benchmark(result, tmp_path / "old")
    assert list((tmp_path / "old").iterdir()) == []


def test_cli_out_that_is_a_file_exits_2_before_loading(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("not a directory")
    assert cli.main(["glove", "--quick", "--out", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith(f"error: --out {out}: exists and is not a")
    assert out.read_text() == "not a directory"
