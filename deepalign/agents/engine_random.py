"""Per-run random numbers of the batched bandit engine.

Every run owns two CPU `torch.Generator`s derived from its seed, never a shared stream, so
run `i` of a batch sees the same numbers as the same seed run alone, on any device:

* the **reward** stream, `torch.Generator().manual_seed(seed)`: one standard normal per step,
  the reward noise. Every policy draws it alike, so all policies see the same reward noise
  for the same seed (common random numbers);
* the **sample** stream, seeded with `sample_seed(seed)` (a fixed 64-bit mix of the seed):
  `rank + n_arms` standard normals per step, `[z1 (rank), z2 (n_arms)]` with `rank` the
  number of columns of the kernel's square root `F` (`kernel_factor`), drawn only by
  policies that need posterior samples (Thompson sampling), so UCB pays nothing for them.

Numbers are drawn in blocks of `chunk` steps (a fixed length, never dependent on the batch
size; the last block is drawn whole and cut, so a shorter horizon gives a prefix of a longer
one). `F z1` (the prior deviation of Thompson sampling, `F F^T = K`) is computed per block:
per run on a CPU (exactly batch invariant), as one batched product on an accelerator (batch
invariant up to floating-point rounding).

Random numbers, and `F z1`, are computed in float32 (drawing float64 normals is ~6x slower
on a CPU), then widened to the engine's dtype: their rounding (~1e-7 relative) is far below
their own randomness, and every posterior computation runs in the engine's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deepalign.errors import ConfigError

__all__ = ["RunNoise", "check_seeds", "sample_seed"]

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = 2**64 - 1


def sample_seed(seed: int) -> int:
    """The seed of a run's sample stream: a splitmix64 step of `seed` (in [0, 2**64))."""
    z = (seed + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    """Validate seeds: a non-empty sequence of ints in [0, 2**63)."""
    if isinstance(seeds, Tensor):
        seeds = seeds.tolist()
    if isinstance(seeds, int | str | bytes) or len(seeds) == 0:
        raise ConfigError(
            f"'seeds' should be a non-empty sequence of ints (one per run) but got {seeds!r}"
        )
    out = []
    for index, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ConfigError(f"'seeds[{index}]' should be an int in [0, 2**63) but got {seed!r}")
        out.append(int(seed))
    return tuple(out)


class RunNoise:
    """Blocks of per-run standard normals for the engine.

    Args:
        seeds: one int per run.
        n_arms: number of arms.
        factor: `n_arms x rank` or `n_runs x n_arms x rank` with `F F^T = K`, or None
            when no posterior samples are needed (then only the reward stream is drawn).
        chunk: steps per block.
        dtype, device: of the returned blocks.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        n_arms: int,
        factor: Tensor | None,
        chunk: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.n_arms = n_arms
        self.chunk = chunk
        self.dtype = dtype
        self.device = device
        self.reward_generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self._rewards = torch.empty(len(seeds), chunk, dtype=torch.float32)
        self._buffers: dict[str, Tensor] = {}
        # per-run views made once: the per-block loops over runs then only draw and multiply
        self._reward_jobs = list(zip(self.reward_generators, self._rewards.unbind(0), strict=True))
        self.factor = None
        if factor is not None:
            self.factor = factor.to("cpu" if device.type == "cpu" else device, torch.float32)
            self.sample_generators = [
                torch.Generator().manual_seed(sample_seed(seed)) for seed in seeds
            ]
            self.rank = self.factor.shape[-1]
            width = self.rank + n_arms
            self._samples = torch.empty(len(seeds), chunk, width, dtype=torch.float32)
            self._deviation = torch.empty(len(seeds), chunk, n_arms, dtype=torch.float32)
            self._sample_jobs = list(
                zip(self.sample_generators, self._samples.unbind(0), strict=True)
            )
            if self.device.type == "cpu":
                transposed = self.factor.transpose(-2, -1)
                factors = [transposed] * len(seeds) if factor.dim() == 2 else transposed.unbind(0)
                self._product_jobs = list(
                    zip(
                        self._samples[..., : self.rank].unbind(0),
                        factors,
                        self._deviation.unbind(0),
                        strict=True,
                    )
                )

    def block(self, length: int) -> tuple[tuple[Tensor, ...], ...]:
        """Draw the next block and keep its first `length` (<= chunk) steps.

        Returns:
            one tuple per step: (reward noise `n_runs`, and when a factor was given, the
            prior deviation `f0 = F z1` and the sample noise `z2`, both `n_runs x n_arms`),
            on `device` in `dtype`; views of buffers that the next block overwrites.
        """
        for generator, out in self._reward_jobs:
            torch.randn(self.chunk, generator=generator, out=out)
        reward_noise = self._widen(self._rewards[:, :length], "reward_noise")
        if self.factor is None:
            return tuple((noise,) for noise in reward_noise.unbind(1))
        rank, drawn = self.rank, self._samples
        for generator, out in self._sample_jobs:
            torch.randn(drawn.shape[1:], generator=generator, out=out)
        if self.device.type == "cpu":
            # one product per run: a run's numbers never depend on the batch it is in
            deviation = self._deviation
            for prior, factor, out in self._product_jobs:
                torch.mm(prior, factor, out=out)
        else:
            # one batched product on the accelerator (batch invariant up to rounding)
            prior = drawn[..., :rank].to(self.device)
            deviation = torch.matmul(prior, self.factor.transpose(-2, -1))
        deviation = self._widen(deviation[:, :length], "deviation")
        sample_noise = self._widen(drawn[:, :length, rank:], "sample_noise")
        return tuple(
            zip(reward_noise.unbind(1), deviation.unbind(1), sample_noise.unbind(1), strict=True)
        )

    def _widen(self, block: Tensor, name: str) -> Tensor:
        """A float32 `n_runs x length (x n_arms)` block copied into a reused buffer in the
        engine's dtype on the device (run-major: a conversion without a transpose; reusing
        the buffer avoids page-faulting a fresh large allocation every block)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != block.shape:
            buffer = torch.empty(block.shape, dtype=self.dtype, device=self.device)
            self._buffers[name] = buffer
        return buffer.copy_(block)
