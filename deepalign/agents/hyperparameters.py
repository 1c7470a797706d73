"""The fixed GP hyperparameters shared by the GP agents and the batched engine."""

from __future__ import annotations

import math
from dataclasses import dataclass

from deepalign.errors import ConfigError

__all__ = ["DEFAULT_PRIOR_SD_FRACTION", "GPHyperparameters"]

DEFAULT_PRIOR_SD_FRACTION = 0.25
"""Prior SD of a rating, as a fraction of the value scale's range (mean +- 2 SD spans it)."""


@dataclass(frozen=True)
class GPHyperparameters:
    """Constant mean, outputscale and observation-noise variance of a GP over arms.

    The GP prior of the rating function is `f ~ GP(mean, outputscale * k)` with the agent's
    kernel `k`, and a reward is `f(item) + eps`, `eps ~ N(0, noise_variance)`.
    """

    mean: float
    outputscale: float
    noise_variance: float

    def __post_init__(self) -> None:
        for name in ("mean", "outputscale", "noise_variance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise ConfigError(f"GPHyperparameters.{name} should be finite but got {value!r}")
        for name in ("outputscale", "noise_variance"):
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"GPHyperparameters.{name} should be > 0 but got {getattr(self, name)!r}"
                )

    @classmethod
    def from_bandit(cls, bandit, prior_sd_fraction: float = DEFAULT_PRIOR_SD_FRACTION):
        """The defaults for a `ValueBandit`, set from the value's scale, never fitted:

        * `mean` = the scale's midpoint `(lo + hi) / 2`;
        * `outputscale` = `(prior_sd_fraction * (hi - lo))**2`: with the default 0.25 the
          prior SD is a quarter of the range (3/4 of the variance of a rating spread
          uniformly over the scale);
        * `noise_variance` = the mean reward-noise variance over the arms
          (`mean(bandit.arm_noise_sd**2)`), i.e. the environment's own noise.
        """
        if not 0 < prior_sd_fraction < math.inf:
            raise ConfigError(
                f"'prior_sd_fraction' should be > 0 (prior SD / scale range) but got "
                f"{prior_sd_fraction!r}"
            )
        lo, hi = bandit.scale
        return cls(
            mean=(lo + hi) / 2.0,
            outputscale=(prior_sd_fraction * (hi - lo)) ** 2,
            noise_variance=float((bandit.arm_noise_sd**2).mean()),
        )
