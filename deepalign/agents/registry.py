"""Names the CLI (and studies) use for agents and kernels: explicit tables, no string dispatch.

`AGENTS` maps an agent name to an `AgentSpec` (a builder `(env, kernel, options) -> agent`);
`KERNELS` maps a kernel name to a `KernelSpec` (a builder `dataset -> kernel`). Any other
kernel argument that names an existing directory is an exported encoder
(`DeepKernel.from_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpytorch.kernels import Kernel

from deepalign.agents.base import AgentFactory, BanditAgent
from deepalign.agents.baselines import IndependentThompsonAgent, RandomAgent
from deepalign.agents.calibration import (
    DEFAULT_CALIBRATION,
    KernelCalibration,
    median_heuristic_kernel,
)
from deepalign.agents.environment import ValueBandit
from deepalign.agents.gp import (
    DEFAULT_BETA,
    DEFAULT_SAFE_BETA,
    GPGreedyAgent,
    GPThompsonAgent,
    GPUCBAgent,
    SafeGPAgent,
)
from deepalign.agents.hyperparameters import DEFAULT_PRIOR_SD_FRACTION, GPHyperparameters
from deepalign.agents.regression import (
    DEFAULT_EPSILON,
    KernelRegressionAgent,
    SVRAgent,
    kernel_matrix,
)
from deepalign.errors import ConfigError
from deepalign.kernels import DeepKernel, MatrixKernel, constant_kernel, identity_kernel

__all__ = [
    "AGENTS",
    "KERNELS",
    "AgentOptions",
    "AgentSpec",
    "KernelSpec",
    "agent_factory",
    "build_kernel",
]


@dataclass(frozen=True)
class AgentOptions:
    """Settings an agent builder may use (each agent reads only its own).

    Attributes:
        refit_every: GP agents: refit mean/outputscale/noise every k observations (None).
        beta: GP-UCB's beta (`mu + sqrt(beta) sd`).
        beta_safe: SafeGPAgent's beta (`mu - sqrt(beta_safe) sd >= threshold`).
        safe_fallback: SafeGPAgent's rule while no arm is safe ("probability" | "lcb").
        epsilon: exploration probability of kernel regression and SVR.
        prior_sd_fraction: prior SD of a rating / the value scale's range.
        calibration: kernel calibration (`deepalign.agents.calibration`): GP agents fit a
            temperature, outputscale and noise to their observations on its schedule; kernel
            regression and SVR use the kernel on its median distance scale. None keeps every
            kernel as given (the paper's fixed prior). Exclusive with `refit_every`.
    """

    refit_every: int | None = None
    beta: float = DEFAULT_BETA
    beta_safe: float = DEFAULT_SAFE_BETA
    safe_fallback: str = "probability"
    epsilon: float = DEFAULT_EPSILON
    prior_sd_fraction: float = DEFAULT_PRIOR_SD_FRACTION
    calibration: KernelCalibration | None = DEFAULT_CALIBRATION

    def __post_init__(self) -> None:
        if self.refit_every is not None and self.calibration is not None:
            raise ConfigError(
                "'refit_every' and 'calibration' both refit GP hyperparameters; choose one "
                "(--refit-every with --calibration off)"
            )


AgentBuilder = Callable[[ValueBandit, "Kernel | None", AgentOptions], BanditAgent]


@dataclass(frozen=True)
class AgentSpec:
    """An agent the CLI can run: its builder, whether it needs a kernel, one line about it."""

    build: AgentBuilder
    uses_kernel: bool
    description: str


def _hyper(env: ValueBandit, options: AgentOptions) -> GPHyperparameters:
    return GPHyperparameters.from_bandit(env, options.prior_sd_fraction)


def _gp_ts(env: ValueBandit, kernel: Kernel | None, options: AgentOptions) -> BanditAgent:
    return GPThompsonAgent(
        kernel, env.arm_items, env.n_items, _hyper(env, options), options.refit_every,
        options.calibration,
    )


def _gp_ucb(env: ValueBandit, kernel: Kernel | None, options: AgentOptions) -> BanditAgent:
    return GPUCBAgent(
        kernel, env.arm_items, env.n_items, _hyper(env, options), options.refit_every,
        options.beta, options.calibration,
    )


def _greedy(env: ValueBandit, kernel: Kernel | None, options: AgentOptions) -> BanditAgent:
    return GPGreedyAgent(
        kernel, env.arm_items, env.n_items, _hyper(env, options), options.refit_every,
        options.calibration,
    )


def _smoother_kernel(env: ValueBandit, kernel: Kernel, options: AgentOptions):
    """The kernel as kernel regression and SVR use it: on its median distance scale among
    the arms with calibration on, else as given."""
    if options.calibration is None:
        return kernel
    return median_heuristic_kernel(kernel_matrix(kernel, env.n_items), env.arm_items)


def _safe_gp(env: ValueBandit, kernel: Kernel | None, options: AgentOptions) -> BanditAgent:
    return SafeGPAgent(
        kernel,
        env.arm_items,
        env.n_items,
        _hyper(env, options),
        env.threshold,
        options.refit_every,
        options.beta_safe,
        options.safe_fallback,
        options.calibration,
    )


def _kernel_regression(schedule: str):
    def build(env: ValueBandit, kernel: Kernel | None, options: AgentOptions) -> BanditAgent:
        return KernelRegressionAgent(
            _smoother_kernel(env, kernel, options), env.arm_items, env.n_items,
            _hyper(env, options).mean, options.epsilon, epsilon_schedule=schedule,
        )

    return build


def _svr(schedule: str):
    def build(env: ValueBandit, kernel: Kernel | None, options: AgentOptions) -> BanditAgent:
        return SVRAgent(
            _smoother_kernel(env, kernel, options), env.arm_items, env.n_items,
            _hyper(env, options).mean, options.epsilon,
            reward_range=env.scale[1] - env.scale[0], epsilon_schedule=schedule,
        )

    return build


def _independent_ts(
    env: ValueBandit, kernel: Kernel | None, options: AgentOptions
) -> BanditAgent:
    return IndependentThompsonAgent(env.arm_items, env.n_items, _hyper(env, options))


def _random(env: ValueBandit, kernel: Kernel | None, options: AgentOptions) -> BanditAgent:
    return RandomAgent(env.arm_items, env.n_items, _hyper(env, options).mean)


AGENTS: dict[str, AgentSpec] = {
    "gp-ts": AgentSpec(_gp_ts, True, "GP Thompson sampling (BoTorch SingleTaskGP)"),
    "gp-ucb": AgentSpec(_gp_ucb, True, "GP-UCB, mu + sqrt(beta) sd"),
    "safe-gp": AgentSpec(_safe_gp, True, "Thompson sampling among arms whose LCB clears the "
                         "bad-action threshold"),
    "greedy": AgentSpec(_greedy, True, "GP posterior-mean argmax, no exploration (reference "
                        "agent)"),
    "kernel-regression": AgentSpec(_kernel_regression("constant"), True,
                                   "Nadaraya-Watson, epsilon-greedy"),
    "svr": AgentSpec(_svr("constant"), True, "support vector regression (precomputed "
                     "kernel), epsilon-greedy"),
    "kernel-regression-decay": AgentSpec(_kernel_regression("decay"), True,
                                         "Nadaraya-Watson, epsilon-greedy with epsilon "
                                         "min(1, 10 epsilon / (t + 1))"),
    "svr-decay": AgentSpec(_svr("decay"), True, "SVR, epsilon-greedy with epsilon "
                           "min(1, 10 epsilon / (t + 1))"),
    "independent-ts": AgentSpec(_independent_ts, False, "independent-arm Gaussian Thompson "
                                "sampling (no kernel)"),
    "random": AgentSpec(_random, False, "uniformly random arm"),
}


def agent_factory(name: str, kernel: Kernel | None, options: AgentOptions) -> AgentFactory:
    """A factory `env -> agent` for the agent called `name` (a key of `AGENTS`)."""
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; choose one of {sorted(AGENTS)}")
    spec = AGENTS[name]
    if spec.uses_kernel and kernel is None:
        raise ConfigError(f"agent {name!r} needs a kernel; pass one (e.g. --kernel human)")

    def build(env: ValueBandit) -> BanditAgent:
        return spec.build(env, kernel, options)

    return build


def _human(dataset) -> Kernel:
    if dataset.similarity is None:
        raise ConfigError(
            f"kernel 'human' needs human similarity judgments but dataset {dataset.name!r} has "
            "none; choose another kernel (e.g. 'pretrained') or a dataset with similarity"
        )
    return MatrixKernel.from_similarity(dataset.similarity, fit_outputscale=False)


def _constant(dataset) -> Kernel:
    return constant_kernel(len(dataset.items), fit_outputscale=False)


def _identity(dataset) -> Kernel:
    return identity_kernel(len(dataset.items), fit_outputscale=False)


def _encoder_kernel(make_encoder: Callable[[], object]) -> Callable[[object], Kernel]:
    def build(dataset) -> Kernel:
        return DeepKernel(make_encoder(), dataset.items, base="cosine", fit_outputscale=False)

    return build


def _sentence():
    from deepalign.encoders import SentenceEncoder

    return SentenceEncoder()


def _random_init():
    from deepalign.encoders import RandomInitEncoder

    return RandomInitEncoder(seed=0)


def _lexical():
    from deepalign.encoders import LexicalEncoder

    return LexicalEncoder()


def _length():
    from deepalign.encoders import LengthEncoder

    return LengthEncoder()


@dataclass(frozen=True)
class KernelSpec:
    """A named kernel: its builder `dataset -> Kernel` and one line about it."""

    build: Callable[[object], Kernel]
    description: str


def _zoo_encoder(name: str) -> Callable[[], object]:
    def make():
        from deepalign.encoders import SentenceEncoder

        return SentenceEncoder(backbone=name)

    return make


def _zoo_kernels() -> dict[str, KernelSpec]:
    from deepalign.encoders.zoo import ZOO

    return {name: KernelSpec(_encoder_kernel(_zoo_encoder(name)),
                             f"cosine DeepKernel of {entry.model} (encoder zoo)")
            for name, entry in ZOO.items()}


KERNELS: dict[str, KernelSpec] = {
    "human": KernelSpec(_human, "MatrixKernel of the dataset's human similarity (with its mask)"),
    "pretrained": KernelSpec(_encoder_kernel(_sentence), "cosine DeepKernel of the bundled "
                             "all-MiniLM-L6-v2 SentenceEncoder"),
    "random-init": KernelSpec(_encoder_kernel(_random_init), "cosine DeepKernel of a "
                              "randomly initialised MiniLM (seed 0)"),
    "lexical": KernelSpec(_encoder_kernel(_lexical), "cosine DeepKernel of TF-IDF vectors"),
    "length": KernelSpec(_encoder_kernel(_length), "cosine DeepKernel of text length only "
                         "(the paper's control)"),
    "constant": KernelSpec(_constant, "all ones over the items: every action alike "
                           "(reference kernel)"),
    "identity": KernelSpec(_identity, "identity matrix over the items: independent arms "
                           "(reference kernel)"),
    **_zoo_kernels(),  # "minilm", "mpnet", "minilm-l3", "use", "e5", "glove"
}


def build_kernel(name_or_path: str, dataset) -> Kernel:
    """The kernel called `name_or_path` (a key of `KERNELS`), or, for a directory, a cosine
    `DeepKernel.from_checkpoint` of the encoder exported there, over `dataset.items`."""
    if name_or_path in KERNELS:
        return KERNELS[name_or_path].build(dataset)
    path = Path(name_or_path)
    if path.is_dir():
        return DeepKernel.from_checkpoint(path, dataset.items, fit_outputscale=False)
    raise ConfigError(
        f"unknown kernel {name_or_path!r}: not one of {sorted(KERNELS)} and not a directory; "
        "pass a kernel name or the directory of an encoder exported by python -m deepalign.train"
    )
