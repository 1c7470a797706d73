"""deepalign.agents: value-learning bandit agents, their environment and metrics.

Shapes: `n_items` items, `n_arms` arms (personalization items), `n_heldout` held-out items,
`n_runs` runs, `T` horizon.
"""

from deepalign.agents.base import BanditAgent, RunTrajectory, run_bandit, seed_generators
from deepalign.agents.baselines import IndependentThompsonAgent, RandomAgent
from deepalign.agents.calibration import (
    DEFAULT_CALIBRATION,
    CalibrationChoice,
    KernelCalibration,
    calibrated_kernel,
)
from deepalign.agents.calibration_fit import select_hyperparameters
from deepalign.agents.engine import GPBanditEngine, Trajectory
from deepalign.agents.engine.exact import exact_posterior
from deepalign.agents.engine.policies import (
    EnginePolicy,
    GreedyPolicy,
    SafePolicy,
    ThompsonPolicy,
    UCBPolicy,
)
from deepalign.agents.engine.posterior import BatchedGPPosterior
from deepalign.agents.environment import ValueBandit
from deepalign.agents.gp import (
    DEFAULT_BETA,
    DEFAULT_SAFE_BETA,
    SAFE_FALLBACKS,
    GPGreedyAgent,
    GPThompsonAgent,
    GPUCBAgent,
    SafeGPAgent,
)
from deepalign.agents.hyperparameters import GPHyperparameters
from deepalign.agents.metrics import (
    generalization_metrics,
    personalization_metrics,
    safe_general_score,
)
from deepalign.agents.posterior import GPPosterior
from deepalign.agents.registry import AGENTS, KERNELS, AgentOptions, agent_factory, build_kernel
from deepalign.agents.regression import DEFAULT_EPSILON, KernelRegressionAgent, SVRAgent
from deepalign.agents.runs import BanditResults, run_seeds, summarize

__all__ = [
    "AGENTS",
    "DEFAULT_CALIBRATION",
    "DEFAULT_BETA",
    "DEFAULT_EPSILON",
    "DEFAULT_SAFE_BETA",
    "SAFE_FALLBACKS",
    "KERNELS",
    "AgentOptions",
    "BanditAgent",
    "BanditResults",
    "BatchedGPPosterior",
    "CalibrationChoice",
    "EnginePolicy",
    "GPBanditEngine",
    "GPGreedyAgent",
    "GPHyperparameters",
    "GPPosterior",
    "GPThompsonAgent",
    "GPUCBAgent",
    "GreedyPolicy",
    "IndependentThompsonAgent",
    "KernelCalibration",
    "KernelRegressionAgent",
    "RandomAgent",
    "RunTrajectory",
    "SVRAgent",
    "SafeGPAgent",
    "SafePolicy",
    "ThompsonPolicy",
    "Trajectory",
    "UCBPolicy",
    "ValueBandit",
    "agent_factory",
    "build_kernel",
    "calibrated_kernel",
    "exact_posterior",
    "generalization_metrics",
    "personalization_metrics",
    "run_bandit",
    "run_seeds",
    "safe_general_score",
    "seed_generators",
    "select_hyperparameters",
    "summarize",
]
