"""Typed study configuration: one YAML recipe -> a frozen `StudyConfig`.

A recipe has shared run settings at the top level and one optional section per study:

```yaml
name: quick
seeds: 4                 # an int n (seeds 0..n-1) or an explicit list
horizon: 40
synthetic: {dataset: spa-verb-act, values: [act_evaluation], levels: 11}
real: {values: [act_evaluation], kernels: [human, pretrained, length]}
trained: {encoder_seeds: 2, train_args: ["--trainer.max_epochs=3"]}
```

Defaults live in the dataclasses below (no file needed for them). `load_study_config`
raises `ConfigError` naming the file and key for unknown keys, wrong types, and (through
`recipe_checks.validate_study_config`) unknown datasets, agents or kernels and bad ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deepalign.studies.typed_yaml import build_dataclass, read_yaml_mapping

__all__ = [
    "AGENTS",
    "ALIGNED_PREFIX",
    "BenchmarkConfig",
    "ENGINE_AGENTS",
    "REAL_KERNELS",
    "RealStudyConfig",
    "SYNTHETIC_ARM_SETS",
    "SYNTHETIC_ENVIRONMENTS",
    "split_variant",
    "StudyConfig",
    "SyntheticStudyConfig",
    "TrainedStudyConfig",
    "TransferConfig",
    "level_list",
    "load_study_config",
    "seed_list",
    "zoo_kernels",
]

#: Agent names (as in `python -m deepalign.bandit --agent`).
AGENTS = (
    "gp-ts", "gp-ucb", "safe-gp", "greedy", "kernel-regression", "svr",
    "kernel-regression-decay", "svr-decay", "independent-ts", "random",
)
#: Agents the batched exact GP engine runs; the others fall back to the BoTorch/sklearn agents.
ENGINE_AGENTS = ("gp-ts", "gp-ucb", "safe-gp", "greedy")
#: Study 1's environments and arm sets (`deepalign.studies.environments`).
SYNTHETIC_ENVIRONMENTS = ("ratings", "gp-sample")
SYNTHETIC_ARM_SETS = ("all", "block")


def split_variant(condition: str) -> tuple[str, str]:
    """Study 1's cell condition "environment:arms" -> (environment, arm set); "synthetic",
    the condition of tables from before variants, is ("ratings", "all")."""
    if ":" not in condition:
        return "ratings", "all"
    environment, arms = condition.split(":", 1)
    return environment, arms
#: Kernels of study 2 (real judgments), besides the zoo's (`zoo_kernels`).
REAL_KERNELS = (
    "human", "pretrained", "aligned", "random-init", "lexical", "length", "constant", "identity",
)
#: Prefix of a zoo encoder aligned inside the study: "aligned-mpnet" is mpnet with a head
#: trained by the default recipe on the personalization items of `real.train_dataset`.
ALIGNED_PREFIX = "aligned-"


def zoo_kernels() -> tuple[str, ...]:
    """Study 2's zoo kernels: every zoo name (pretrained) and "aligned-<name>"."""
    from deepalign.encoders.zoo import ZOO

    return tuple(ZOO) + tuple(ALIGNED_PREFIX + name for name in ZOO)

SPA_VALUES = (
    "act_evaluation",
    "act_potency",
    "act_activity",
    "glasgow_valence",
    "glasgow_arousal",
    "glasgow_dominance",
)


@dataclass(frozen=True)
class SyntheticStudyConfig:
    """Study 1: kernels of controlled alignment with the human matrix of `dataset`.

    `levels`: an int n (n target alignments evenly from 0 to 1) or an explicit list in
    [0, 1]. Each run gets its own kernel (seeded by the run's seed), and the table records
    the kernel's *measured* alignment, never the target. `references`: also run the
    reference kernels "constant" and "identity" (no level; the variant's condition) with every
    kernel agent, beside the levels.

    `environment`: "ratings" (true values = mean human ratings) and/or "gp-sample" (true
    values drawn per run from a GP with the human kernel); `arms`: "all" (every item with
    the value) and/or "block" (the largest complete block of the human matrix). Every
    environment runs on every arm set; each pair is a variant, the cells' condition
    ("ratings:all", "gp-sample:block", ...). See `deepalign.studies.environments`.
    """

    dataset: str = "spa-verb-act"
    values: tuple[str, ...] = ("act_evaluation",)
    levels: int | tuple[float, ...] = 11
    agents: tuple[str, ...] = ("gp-ts", "kernel-regression", "svr", "independent-ts")
    references: bool = True
    environment: str | tuple[str, ...] = "ratings"
    arms: str | tuple[str, ...] = "all"
    seeds: int | tuple[int, ...] | None = None
    horizon: int | None = None

    def variants(self) -> tuple[str, ...]:
        """The study's variants, "environment:arms" (e.g. "gp-sample:block"), environment
        first: every environment on every arm set."""
        return tuple(f"{e}:{a}" for e in self.environments() for a in self.arm_sets())

    def environments(self) -> tuple[str, ...]:
        return (self.environment,) if isinstance(self.environment, str) else self.environment

    def arm_sets(self) -> tuple[str, ...]:
        return (self.arms,) if isinstance(self.arms, str) else self.arms


@dataclass(frozen=True)
class RealStudyConfig:
    """Study 2: real human judgments on `dataset` and kernels from `kernels`.

    `aligned_encoder`: an exported encoder directory or a `deepalign.train` run directory;
    "trained" uses the first encoder trained by this recipe's `trained` section; None drops
    the "aligned" kernel. `length_control`: also run every kernel against the paper's length
    control (reward = action length, alignment measured against length similarity).

    Kernels may also be zoo encoders by name (`python -m deepalign.encoders list`), pretrained
    ("mpnet") or aligned in the study ("aligned-mpnet": `deepalign.train`'s default recipe
    with that backbone on the personalization items of `train_dataset`, seed 0, plus
    `train_args`; cached in OUT/encoders/models/<name>, or taken from `aligned_runs[name]`).
    """

    dataset: str = "spa-verb-act"
    values: tuple[str, ...] = SPA_VALUES
    kernels: tuple[str, ...] = REAL_KERNELS
    agents: tuple[str, ...] = ("gp-ts",)
    aligned_encoder: str | None = "trained"
    length_control: bool = True
    train_dataset: str = "spa-verb"
    train_args: tuple[str, ...] = ()
    aligned_runs: dict[str, str] = field(default_factory=dict)
    seeds: int | tuple[int, ...] | None = None
    horizon: int | None = None

    def aligned_zoo(self) -> tuple[str, ...]:
        """The zoo names of the "aligned-<name>" kernels, in recipe order."""
        return tuple(k[len(ALIGNED_PREFIX):] for k in self.kernels
                     if k.startswith(ALIGNED_PREFIX))


@dataclass(frozen=True)
class TransferConfig:
    """Study 3, transfer variant: encoders aligned on `train_datasets` (pairs with held-out
    items), bandits on `test_datasets` whose arms have no human similarity. `values` maps a
    test dataset to its value columns (missing: the dataset's first value column)."""

    train_datasets: tuple[str, ...] = ("activity-pairs", "sts-captions")
    test_datasets: tuple[str, ...] = ("dillion-morality", "mfv")
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    train_args: tuple[str, ...] = ()
    runs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainedStudyConfig:
    """Study 3: encoders trained by `deepalign.train` on `train_dataset` (personalization
    items only), paired by seed with the same encoder before training, bandits on `dataset`.

    `train_args`: extra arguments for `python -m deepalign.train` (e.g. a recipe and epochs).
    `runs`: cached trainer run directories to use instead of training (one per seed).
    `checkpoints`: also run encoders of checkpoints along training (dose-response): at most
    `dose_points` of them, evenly spaced over the epochs saved. Runs trained here keep every
    epoch's checkpoint while training (so the trainer's choice of the best epoch is
    unchanged), then only the chosen ones, the best and the last.
    `references`: also run the reference kernels "constant" and "identity" on the same
    bandits (condition "reference"; in the transfer variant too). `uniformity_control`: for
    every final trained encoder (each seed, and the transfer's), also run the
    "uniformity-matched" control: its untrained kernel blended with a constant to the trained
    kernel's mean off-diagonal similarity (`deepalign.studies.references`);
    `uniformity_checkpoints`: the control for each dose checkpoint too (as many runs again as
    the dose-response itself; under calibration every control repeats "before").
    """

    dataset: str = "spa-verb-act"
    train_dataset: str = "spa-verb"
    values: tuple[str, ...] = SPA_VALUES
    agents: tuple[str, ...] = ("gp-ts",)
    encoder_seeds: int | tuple[int, ...] = 3
    train_args: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()
    checkpoints: bool = True
    dose_points: int = 6
    references: bool = True
    uniformity_control: bool = True
    uniformity_checkpoints: bool = False
    transfer: TransferConfig | None = None
    seeds: int | tuple[int, ...] | None = None
    horizon: int | None = None


@dataclass(frozen=True)
class BenchmarkConfig:
    """The encoder benchmark (`deepalign.studies.benchmark`, as `python -m deepalign.benchmark`)
    run after the studies into OUT/benchmark/: `encoders` are zoo names, exported encoder or
    trainer run directories, or "trained" (the first encoder of the 'trained' section, which
    moves its training set's columns to held-out pairs); GP-TS on `values` of spa-verb-act,
    `seeds` runs of `horizon` pulls each."""

    encoders: tuple[str, ...] = ("minilm", "minilm-l3", "glove")
    values: tuple[str, ...] = ("act_evaluation", "glasgow_valence")
    seeds: int = 5
    horizon: int = 100


@dataclass(frozen=True)
class StudyConfig:
    """A whole recipe: shared run settings and the studies to run (None = skipped).

    `seeds`: bandit seeds; `horizon`: steps T per run; `split_seed` / `heldout_fraction`:
    the shared personalization / generalization item split; `noise`: reward noise SD as a
    fraction of the value's scale (None = the environment's default); `batch_runs`: most runs
    simulated (and written) together; `memory_budget_mb`: most memory the GP engine's state may
    take per batch (per worker under Ray), in MiB: a batch whose runs would need more is
    simulated in chunks of `memory_budget_mb * 2**20 // GPBanditEngine.bytes_per_run(T)` runs
    (same results; see the README's "Past one machine"); `device`: torch device of the engine.
    `calibration`: put every kernel on an equal footing before an agent uses it
    (`deepalign.agents.calibration`, on by default; off reproduces the paper's fixed prior).
    `primary_metric`: the study's ONE primary safe-and-general score, fixed in the recipe
    before the run; the report's answer leads with it (`safe_general_score`: the share of
    good choices averaged over the exploration pulls and the top-5 held-out
    recommendations).
    """

    name: str = "study"
    seeds: int | tuple[int, ...] = 30
    horizon: int = 100
    split_seed: int = 0
    heldout_fraction: float = 0.3
    noise: float | None = None
    batch_runs: int = 512
    memory_budget_mb: int = 1024
    device: str = "cpu"
    calibration: bool = True
    primary_metric: str = "safe_general_score"
    synthetic: SyntheticStudyConfig | None = None
    real: RealStudyConfig | None = None
    trained: TrainedStudyConfig | None = None
    benchmark: BenchmarkConfig | None = None
    source: str = field(default="<memory>", compare=False)


def seed_list(seeds: int | tuple[int, ...]) -> tuple[int, ...]:
    """Seeds as a tuple: an int n means 0..n-1."""
    return tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)


def level_list(levels: int | tuple[float, ...]) -> tuple[float, ...]:
    """Target alignments: an int n means n levels evenly from 0 to 1 (rounded to 1e-9)."""
    if isinstance(levels, int):
        if levels < 2:
            return (1.0,) if levels == 1 else ()
        return tuple(round(i / (levels - 1), 9) for i in range(levels))
    return tuple(levels)


def load_study_config(path: str | Path) -> StudyConfig:
    """Read and validate the study recipe at `path`; ConfigError naming the file and key."""
    source = str(path)
    data = read_yaml_mapping(path)
    config = build_dataclass(StudyConfig, data, source)
    config = StudyConfig(**{**config.__dict__, "source": source})
    from deepalign.studies.recipe_checks import validate_study_config

    validate_study_config(config)
    return config
