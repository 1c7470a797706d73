"""Training configurations given to `python -m deepalign.train` (run in the case directory,
so its runs go to `runs/` there)."""

from __future__ import annotations

from audit.fixtures import QUICK_TRAIN
from audit.harness import READ_ONLY, Case

NEEDS: tuple[str, ...] = ()

FAST = ("--data.max_items", "60")


def _case(id, *args, files=None, names=(), expect="refuse", check=None, setup=None, note=""):
    return Case(id, ("deepalign.train", *FAST, *args), files=files or {},
                names=names or tuple(a for a in args[:1] if a.startswith("--")),
                expect=expect, check=check, setup=setup, note=note)


def _config(id, text, *args, names=(), **kw):
    return _case(id, "--config", "mine.yaml", *args, files={"mine.yaml": text},
                 names=names or ("mine.yaml",), **kw)


def _finished(case_dir, output):
    summaries = list((case_dir / "runs").glob("*/version_0/summary.json"))
    return None if summaries else "no runs/*/version_0/summary.json"


def _root_file(case_dir, fx):
    (case_dir / "afile").write_text("x\n")


ONE_EPOCH = (*QUICK_TRAIN[2:], "--trainer.max_epochs", "1")

CASES = [
    _case("valid", *ONE_EPOCH, expect="accept", check=_finished),
    _config("valid-config-file", "trainer:\n  max_epochs: 1\n", *ONE_EPOCH, expect="accept",
            check=_finished),
    _case("valid-print-config", "--print_config", expect="accept"),
    _case("unknown-option", "--trainer.max_epoch", "3", names=("max_epoch",)),
    _case("unknown-group", "--trainr.max_epochs", "3", names=("trainr",)),
    _case("max-epochs-negative", "--trainer.max_epochs", "-3", names=("max_epochs",)),
    _case("max-epochs-word", "--trainer.max_epochs", "ten", names=("max_epochs",)),
    _case("accelerator-gpu-absent", "--trainer.accelerator", "gpu", names=("gpu",)),
    _case("accelerator-bogus", "--trainer.accelerator", "bogus", names=("bogus",)),
    _case("devices-zero", "--trainer.devices", "0", names=("devices",)),
    _case("devices-word", "--trainer.devices", "many", names=("devices",)),
    _case("precision-bogus", "--trainer.precision", "7", names=("precision",)),
    _case("seed-negative", "--seed_everything", "-1", names=("seed_everything",)),
    _case("seed-huge", "--seed_everything", str(10**20), names=("seed_everything",)),
    _case("seed-word", "--seed_everything", "abc", names=("seed_everything",)),
    _case("head-bogus", "--model.encoder.init_args.head", "bogus", names=("head",)),
    _case("backbone-missing-dir", "--model.encoder.init_args.backbone", "/nonexistent/dir",
          names=("backbone", "/nonexistent/dir")),
    _case("backbone-unknown-name", "--model.encoder.init_args.backbone", "bert-large",
          names=("backbone", "bert-large")),
    _case("encoder-class-not-an-encoder", "--model.encoder.class_path", "torch.nn.Linear",
          names=("model.encoder",)),
    _case("encoder-class-missing", "--model.encoder.class_path", "deepalign.encoders.Nope",
          names=("model.encoder",)),
    _case("loss-class-bogus", "--model.loss.class_path", "os.system", names=("model.loss",)),
    _case("loss-strength-negative", "--model.loss.init_args.regularization_strength", "-1",
          names=("regularization_strength",)),
    _case("learning-rate-negative", "--model.learning_rate", "-0.1", names=("learning_rate",)),
    _case("learning-rate-nan", "--model.learning_rate", "nan", names=("learning_rate",)),
    _case("preservation-weight-negative", "--model.preservation_weight", "-5",
          names=("preservation_weight",)),
    _case("dropout-above-one", "--model.input_dropout", "1.5", names=("input_dropout",)),
    _case("heldout-fraction-one", "--data.heldout_fraction", "1.0",
          names=("heldout_fraction",)),
    _case("heldout-fraction-negative", "--data.heldout_fraction", "-0.2",
          names=("heldout_fraction",)),
    _case("val-fraction-one", "--data.val_fraction", "1.0", names=("val_fraction",)),
    _case("unknown-dataset", "--data.dataset", "spa-verbs", names=("spa-verbs",)),
    _case("dataset-csv-missing", "--data.dataset", "mine.csv", names=("mine.csv",)),
    _case("similarity-without-csv", "--data.similarity", "sim.npy", names=("similarity",)),
    _case("max-items-zero", "--data.max_items", "0", names=("max_items",)),
    _case("batch-items-zero", "--data.batch_items", "0", names=("batch_items",)),
    _case("pool-size-negative", "--data.pool_size", "-1", names=("pool_size",)),
    _case("unknown-preservation-set", "--data.preservation_sets=[nope]", names=("nope",)),
    _case("early-stopping-monitor-bogus", "--early_stopping.monitor", "bogus/x",
          names=("early_stopping.monitor",)),
    _case("checkpoint-monitor-bogus", "--checkpoint.monitor", "bogus/x",
          names=("checkpoint.monitor",)),
    _case("early-stopping-mode-bogus", "--early_stopping.mode", "up",
          names=("--early_stopping", "mode")),
    _case("patience-negative", "--early_stopping.patience", "-1", names=("patience",)),
    _case("root-dir-is-a-file", "--trainer.default_root_dir", "afile", setup=_root_file,
          names=("afile",)),
    _case("root-dir-read-only", "--trainer.default_root_dir", READ_ONLY,
          names=(READ_ONLY,)),
    _case("torch-threads-zero", "--torch_threads", "0", names=("torch_threads",)),
    _case("torch-threads-100000", "--torch_threads", "100000", names=("torch_threads",),
          note="torch segfaulted creating the pool"),
    _case("hidden-dim-1e11", "--model.encoder.init_args.head", "mlp",
          "--model.encoder.init_args.hidden_dim", str(10**11), names=("hidden_dim",)),
    _case("output-dim-1e10", "--model.encoder.init_args.output_dim", str(10**10),
          names=("output_dim",)),
    _case("rank-1e10", "--model.encoder.init_args.head", "lowrank",
          "--model.encoder.init_args.rank", str(10**10), names=("rank",)),
    _case("split-seed-negative", "--data.split_seed", "-1", names=("split_seed",)),
    _case("seed-fraction", "--seed_everything", "1.5", names=("seed_everything",)),
    _case("learning-rate-inf", "--model.learning_rate", "inf", names=("learning_rate",)),
    _case("max-time-bogus", "--trainer.max_time", "bogus", names=("--trainer",)),
    _case("dataset-options-unknown", '--data.dataset_options={"bogus": 1}', names=("bogus",)),
    _config("config-not-utf-8", b"trainer:\n  max_epochs: 1\n# \xff\n"),
    _config("config-empty", b""),
    _config("config-comments-only", "# nothing\n"),
    _config("config-yaml-syntax", "trainer: {max_epochs: 1\n"),
    _config("config-unknown-key", "trainer:\n  max_epoch: 1\n", names=("mine.yaml", "max_epoch")),
    _config("config-wrong-type", "trainer:\n  max_epochs: [1, 2]\n",
            names=("mine.yaml", "max_epochs")),
    _config("config-a-list", "- 1\n- 2\n"),
    _config("config-python-payload", "trainer: !!python/object/apply:os.system ['touch PWNED']\n",
            check=lambda d, o: "the YAML payload ran" if (d / "PWNED").exists() else None),
    _case("config-missing", "--config", "gone.yaml", names=("gone.yaml",)),
    _case("ckpt-path-missing", "--ckpt_path", "gone.ckpt", names=("gone.ckpt",)),
    _case("ckpt-last-without-run", "--ckpt_path", "last", "--trainer.max_epochs", "1",
          *QUICK_TRAIN[2:], expect="accept", check=_finished,
          note="no earlier run: starts afresh"),
]
