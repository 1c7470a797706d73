"""A BoTorch `SingleTaskGP` over item indices, with fixed (or periodically refitted) mean,
outputscale and noise."""

from __future__ import annotations

import warnings

import gpytorch
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.kernels import Kernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import ConstantMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Generator, Tensor

from deepalign.agents.calibration import (
    CalibrationChoice,
    KernelCalibration,
    calibrated_kernel,
    check_distance_scale,
    distance_scale,
)
from deepalign.agents.calibration_fit import observation_statistics, select_hyperparameters
from deepalign.agents.hyperparameters import GPHyperparameters
from deepalign.errors import ConfigError

__all__ = ["GPPosterior", "item_inputs", "joint_sample"]


def item_inputs(items: Tensor) -> Tensor:
    """Item indices (LongTensor `m`) as the `m x 1` float64 index column the kernels take."""
    return items.to(torch.float64).unsqueeze(-1)


def joint_sample(mean: Tensor, covariance: Tensor, generator: Generator) -> Tensor:
    """One joint Gaussian sample (`m`) from `N(mean, covariance)` (`m`, `m x m`).

    Uses the Cholesky factor of `covariance` (with jitter 1e-10..1e-6 times its mean
    diagonal when needed), or the eigendecomposition with negative eigenvalues clipped to 0
    when even that fails. Draws exactly `m` standard normals from `generator`.
    """
    z = torch.randn(mean.numel(), generator=generator, dtype=torch.float64)
    covariance = (covariance + covariance.mT) / 2
    scale = covariance.diagonal().mean().clamp_min(1e-300)
    eye = torch.eye(mean.numel(), dtype=torch.float64)
    for jitter in (0.0, 1e-10, 1e-8, 1e-6):
        factor, info = torch.linalg.cholesky_ex(covariance + jitter * scale * eye)
        if int(info) == 0:
            return mean + factor @ z
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    return mean + eigenvectors @ (eigenvalues.clamp_min(0).sqrt() * z)


class GPPosterior:
    """Exact GP posterior over items from a BoTorch `SingleTaskGP`.

    The model is `SingleTaskGP(train_X=item index column, train_Y=rewards,
    covar_module=ScaleKernel(kernel), mean_module=ConstantMean(),
    likelihood=GaussianLikelihood(), outcome_transform=None)`, rebuilt from all observations
    whenever asked for a posterior (cheap for a finite arm set). Its constant mean,
    outputscale and noise variance are `hyperparameters` and are NOT fitted by default.
    With `refit_every=k`, whenever the posterior is updated after the observation count has
    passed another multiple of `k` (every `k` steps in `run_bandit`), `fit_gpytorch_mll` refits
    the constant mean, outputscale and noise (only those: the kernel's own parameters, e.g.
    an encoder or a base kernel's lengthscale, stay frozen) starting from the current
    values; the fitted values are kept until the next refit.

    The prior covariance is `hyperparameters.outputscale * kernel(x, x')`: deepalign kernels
    carry their own outputscale (1 for those `deepalign.agents.registry` builds), which
    multiplies it and is never fitted here.

    With `calibration` (`deepalign.agents.calibration`, the same rule and grid as the batched
    engine's) the kernel is replaced by its calibrated version: the grid centre before the
    first fit, then, after each scheduled observation count, the temperature, outputscale and
    noise multiples of highest marginal likelihood of the observations so far
    (`select_hyperparameters` on the kernel's dense matrix over the items). `refit_every`
    and `calibration` are exclusive.

    Args:
        kernel: a gpytorch `Kernel` over the `m x 1` item-index column (all `n_items` items).
        hyperparameters: the fixed prior mean, outputscale and noise variance (with
            calibration: the prior mean, and the outputscale and noise that its grid
            multiplies).
        refit_every: refit period in observations, or None (never refit).
        calibration: a `KernelCalibration`, or None.
        arm_items: LongTensor `n_arms`, the items the agent may pull (calibration measures
            the kernel's distance scale among them); required with `calibration`.
        n_items: the number of items the kernel covers; required with `calibration`.
    """

    def __init__(
        self,
        kernel: Kernel,
        hyperparameters: GPHyperparameters,
        refit_every: int | None = None,
        calibration: KernelCalibration | None = None,
        arm_items: Tensor | None = None,
        n_items: int | None = None,
    ) -> None:
        if not isinstance(kernel, Kernel):
            raise ConfigError(
                f"'kernel' should be a gpytorch Kernel over item indices but got "
                f"{type(kernel).__name__}; build one with deepalign.kernels"
            )
        if refit_every is not None and (
            isinstance(refit_every, bool) or not isinstance(refit_every, int) or refit_every < 1
        ):
            raise ConfigError(
                f"'refit_every' should be a positive int or None but got {refit_every!r}"
            )
        if calibration is not None:
            if not isinstance(calibration, KernelCalibration):
                raise ConfigError(
                    f"'calibration' should be a KernelCalibration or None but got "
                    f"{type(calibration).__name__}"
                )
            if refit_every is not None:
                raise ConfigError(
                    "'refit_every' and 'calibration' both refit hyperparameters; choose one "
                    "(set refit_every=None to calibrate)"
                )
            if arm_items is None or n_items is None:
                raise ConfigError("calibration needs 'arm_items' and 'n_items'")
        self.base_kernel = kernel
        self.kernel = kernel
        self.initial_hyperparameters = hyperparameters
        self.hyperparameters = hyperparameters
        self.refit_every = refit_every
        self.calibration = calibration
        self.choice: CalibrationChoice | None = None
        self._arm_items = arm_items
        self._n_items = n_items
        self._dense: Tensor | None = None
        self._scale: Tensor | None = None
        self._model: SingleTaskGP | None = None
        self._refits = 0
        self.reset()

    def reset(self) -> None:
        self.hyperparameters = self.initial_hyperparameters
        self._model = None
        self._refits = 0
        if self.calibration is not None:
            self._calibrate(CalibrationChoice.default(self.calibration, 1))

    def _calibrate(self, choice: CalibrationChoice) -> None:
        """Use the calibrated kernel and hyperparameters of `choice` (one run)."""
        from deepalign.agents.regression import kernel_matrix  # it imports this module
        from deepalign.kernels import MatrixKernel  # kernels import agents' posterior nowhere

        if self._dense is None:
            self._dense = kernel_matrix(self.base_kernel, self._n_items)
            self._scale = distance_scale(self._dense, self._arm_items)
            check_distance_scale(self._scale, "GPPosterior(calibration=...)")
        self.choice = choice
        matrix = calibrated_kernel(self._dense, float(choice.temperature[0]), self._scale)
        self.kernel = MatrixKernel(matrix)
        hyper = self.initial_hyperparameters
        self.hyperparameters = GPHyperparameters(
            mean=hyper.mean,
            outputscale=hyper.outputscale * float(choice.outputscale[0]),
            noise_variance=hyper.noise_variance * float(choice.noise_scale[0]),
        )

    def condition(self, items: Tensor, rewards: Tensor) -> None:
        """Condition on observations: items (LongTensor `n_obs`), rewards (float64 `n_obs`)."""
        if items.numel() == 0:
            self._model = None
            return
        if self.calibration is not None and self.calibration.fits_after(items.numel()):
            hyper = self.initial_hyperparameters
            stats = observation_statistics(items[None], rewards[None], self._n_items)
            self._calibrate(select_hyperparameters(
                self._dense, self._scale, *stats, hyper.mean, hyper.outputscale,
                hyper.noise_variance, self.calibration,
            ))
        self._model = self._build(items, rewards)
        n_obs = items.numel()
        if self.refit_every is not None and n_obs >= 2:
            due = n_obs // self.refit_every
            if due > self._refits:
                self._refit(self._model)
                self._refits = due

    def _build(self, items: Tensor, rewards: Tensor) -> SingleTaskGP:
        hyper = self.hyperparameters
        mean_module = ConstantMean()
        covar_module = ScaleKernel(self.kernel)
        # the bound sits below the noise asked for, so a small reward noise (the BoTorch path
        # of `--noise-sd 5e-5`: variance 2.5e-9) is set, not refused by gpytorch
        floor = min(1e-8, 0.5 * float(hyper.noise_variance))
        likelihood = GaussianLikelihood(
            noise_constraint=gpytorch.constraints.GreaterThan(floor)
        )
        model = SingleTaskGP(
            item_inputs(items),
            rewards.to(torch.float64).unsqueeze(-1),
            likelihood=likelihood,
            covar_module=covar_module,
            mean_module=mean_module,
            outcome_transform=None,
        )
        model.mean_module.constant = hyper.mean
        model.covar_module.outputscale = hyper.outputscale
        model.likelihood.noise = hyper.noise_variance
        model.eval()
        return model

    def _refit(self, model: SingleTaskGP) -> None:
        frozen = [p for p in self.kernel.parameters() if p.requires_grad]
        for parameter in frozen:
            parameter.requires_grad_(False)
        try:
            model.train()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        finally:
            for parameter in frozen:
                parameter.requires_grad_(True)
        model.eval()
        self.hyperparameters = GPHyperparameters(
            mean=float(model.mean_module.constant.detach()),
            outputscale=float(model.covar_module.outputscale.detach()),
            noise_variance=float(model.likelihood.noise.detach().squeeze()),
        )

    @property
    def model(self) -> SingleTaskGP | None:
        """The current `SingleTaskGP` (None before the first observation)."""
        return self._model

    def mean_and_covariance(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean (`m`) and covariance (`m x m`) of the rating at `items` (`m`)."""
        x = item_inputs(items)
        with torch.no_grad():
            if self._model is None:
                hyper = self.hyperparameters
                prior = self.kernel(x, x).to_dense().to(torch.float64)
                return (
                    torch.full((items.numel(),), hyper.mean, dtype=torch.float64),
                    hyper.outputscale * prior,
                )
            with gpytorch.settings.fast_pred_var(False):
                posterior = self._model.posterior(x)
            mvn = posterior.distribution
            return mvn.mean.to(torch.float64), mvn.covariance_matrix.to(torch.float64)

    def mean_and_variance(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and variance (each `m`, variance clipped at 0) at `items` (`m`)."""
        mean, covariance = self.mean_and_covariance(items)
        return mean, covariance.diagonal().clamp_min(0)
