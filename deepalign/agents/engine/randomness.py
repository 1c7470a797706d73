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

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import torch
from torch import Tensor

from deepalign.agents.engine.fused import compiled
from deepalign.errors import ConfigError

__all__ = ["NoiseBlock", "RunNoise", "check_seeds", "sample_seed"]

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


class NoiseBlock(NamedTuple):
    """The random numbers of `length` consecutive steps, step-major (each step's numbers
    one contiguous slice), on the engine's device in its dtype; views of buffers that a later
    block overwrites.

    Attributes:
        reward: `length x n_runs`, the reward noise.
        deviation: `length x n_runs x n_arms`, the prior deviations `f0 = F z1`, or None
            when no posterior samples are needed.
        sample_noise: `length x n_runs x n_arms`, `z2`, or None likewise.
    """

    reward: Tensor
    deviation: Tensor | None = None
    sample_noise: Tensor | None = None


def _fill(
    reward_generators: list[torch.Generator],
    rewards: list[Tensor],
    sample_generators: list[torch.Generator],
    samples: list[Tensor],
    priors: list[Tensor],
    factors: list[Tensor],
    deviations: list[Tensor],
) -> None:
    """Draw every run's numbers from its own generators, then its `F z1` (one product per
    run: a run's numbers never depend on the batch it is in)."""
    for run in range(len(rewards)):
        torch.randn(rewards[run].shape, generator=reward_generators[run], out=rewards[run])
    for run in range(len(samples)):
        torch.randn(samples[run].shape, generator=sample_generators[run], out=samples[run])
    for run in range(len(deviations)):
        torch.mm(priors[run], factors[run], out=deviations[run])


class _Block:
    """One set of buffers for a block of random numbers (float32 as drawn, the prior
    deviations, and the step-major copies in the engine's dtype), with per-run views made
    once so that drawing a block is one call (`_fill`)."""

    def __init__(self, noise: RunNoise) -> None:
        n_runs, chunk = len(noise.reward_generators), noise.chunk
        self.rewards = torch.empty(n_runs, chunk, dtype=torch.float32)
        self.widened: dict[str, Tensor] = {}
        sample_generators, samples, priors, factors, deviations = [], [], [], [], []
        if noise.factor is not None:
            width = noise.rank + noise.n_arms
            self.samples = torch.empty(n_runs, chunk, width, dtype=torch.float32)
            self.deviation = torch.empty(n_runs, chunk, noise.n_arms, dtype=torch.float32)
            sample_generators, samples = noise.sample_generators, list(self.samples.unbind(0))
            if noise.device.type == "cpu":  # else one batched product on the device
                transposed = noise.factor.transpose(-2, -1)
                factors = [transposed] * n_runs if transposed.dim() == 2 else transposed.unbind(0)
                priors = list(self.samples[..., : noise.rank].unbind(0))
                factors = list(factors)
                deviations = list(self.deviation.unbind(0))
        self.arguments = (
            noise.reward_generators, list(self.rewards.unbind(0)), sample_generators, samples,
            priors, factors, deviations,
        )

    def fill(self) -> None:
        """Draw the block's numbers (and on a CPU their `F z1`)."""
        # one call: compiled, the loop over runs runs in C++ without the GIL, so a
        # prefetching worker does not stall the step loop's thread
        compiled(_fill)(*self.arguments)


class RunNoise:
    """Blocks of per-run standard normals for the engine.

    With `prefetch`, a worker thread draws block `b + 1` into a second set of buffers while
    the caller steps through block `b`, taking the random numbers off the step loop's
    critical path where a core is spare. Each run's generators are only ever used by one
    thread at a time and in the same order, so this changes the speed, never the numbers.
    (Drawing one block with two threads was measured slower: per-run Python calls contend
    for the GIL, and two compiled halves compete with torch's own threads, 2.1 against
    1.3 us per run-step at 50 arms with 2 torch threads.)

    Args:
        seeds: one int per run.
        n_arms: number of arms.
        factor: `n_arms x rank` or `n_runs x n_arms x rank` with `F F^T = K`, or None
            when no posterior samples are needed (then only the reward stream is drawn).
        chunk: steps per block.
        dtype, device: of the returned blocks.
        prefetch: draw the next block in the background (two buffer sets instead of one).
    """

    def __init__(
        self,
        seeds: Sequence[int],
        n_arms: int,
        factor: Tensor | None,
        chunk: int,
        dtype: torch.dtype,
        device: torch.device,
        prefetch: bool = False,
    ) -> None:
        self.n_arms = n_arms
        self.chunk = chunk
        self.dtype = dtype
        self.device = device
        self.prefetch = prefetch
        self.reward_generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.factor = None
        self.rank = 0
        if factor is not None:
            self.factor = factor.to("cpu" if device.type == "cpu" else device, torch.float32)
            self.sample_generators = [
                torch.Generator().manual_seed(sample_seed(seed)) for seed in seeds
            ]
            self.rank = self.factor.shape[-1]
        self._blocks = [_Block(self) for _ in range(2 if prefetch else 1)]

    def blocks(self, horizon: int) -> Iterator[NoiseBlock]:
        """The random numbers of `horizon` steps, block by block; the last block is drawn
        whole and cut, so a shorter horizon gives a prefix of a longer one."""
        lengths = [min(self.chunk, horizon - start) for start in range(0, horizon, self.chunk)]
        if not self.prefetch or len(lengths) == 1:
            for length in lengths:
                yield self._draw(self._blocks[0], length)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepalign-rng") as pool:
            pending = pool.submit(self._draw, self._blocks[0], lengths[0])
            for index in range(len(lengths)):
                numbers = pending.result()
                if index + 1 < len(lengths):
                    following = self._blocks[(index + 1) % 2]
                    pending = pool.submit(self._draw, following, lengths[index + 1])
                yield numbers

    def _draw(self, block: _Block, length: int) -> NoiseBlock:
        block.fill()
        reward_noise = self._widen(block, block.rewards[:, :length], "reward_noise")
        if self.factor is None:
            return NoiseBlock(reward_noise)
        rank, drawn = self.rank, block.samples
        if self.device.type == "cpu":
            deviation = block.deviation
        else:
            # one batched product on the accelerator (batch invariant up to rounding)
            prior = drawn[..., :rank].to(self.device)
            deviation = torch.matmul(prior, self.factor.transpose(-2, -1))
        return NoiseBlock(
            reward_noise,
            self._widen(block, deviation[:, :length], "deviation"),
            self._widen(block, drawn[:, :length, rank:], "sample_noise"),
        )

    def _widen(self, block: _Block, numbers: Tensor, name: str) -> Tensor:
        """A float32 `n_runs x length (x n_arms)` block copied, step-major, into a reused
        `length x n_runs (x n_arms)` buffer in the engine's dtype on the device.

        Step-major, each step's numbers are one contiguous slice for the step loop's
        element-wise ops; reusing the buffer avoids page-faulting a fresh large allocation
        every block.
        """
        step_major = numbers.transpose(0, 1)
        buffer = block.widened.get(name)
        if buffer is None or buffer.shape != step_major.shape:
            buffer = torch.empty(step_major.shape, dtype=self.dtype, device=self.device)
            block.widened[name] = buffer
        return buffer.copy_(step_major)
