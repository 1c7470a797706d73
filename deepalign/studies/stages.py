"""The encoders of one trained run along training: "before", "epoch-k" checkpoints, "after".

A study-3 kernel is named by its stage: "before" (the export's encoder rebuilt untrained,
epoch 0), "epoch-k" (the checkpoint of epoch k, the dose-response view) and "after" (the
export, at the run's final epoch). The uniformity-matched control of a trained stage is named
by its epoch (`stage_at`).
"""

from __future__ import annotations

import math

from torch import nn

from deepalign.studies.encoders import EncoderRun, dose_checkpoints

__all__ = ["stage_at", "stage_encoder", "stages"]


def stages(run: EncoderRun, dose_points: int) -> list[tuple[str, float]]:
    """(kernel name, epoch) of the encoders of a run: before, dose checkpoints, after."""
    out = [("before", 0.0)]
    out += [(f"epoch-{epoch:g}", float(epoch)) for epoch, _ in dose_checkpoints(run, dose_points)]
    out.append(("after", run.final_epoch))
    return out


def stage_at(run: EncoderRun, epoch: float) -> str:
    """The name of the trained stage of `run` at `epoch`: "after" at the final epoch (or a
    nan epoch, when the summary does not say), "epoch-k" otherwise."""
    if math.isnan(epoch) or epoch == run.final_epoch:
        return "after"
    return f"epoch-{epoch:g}"


def stage_encoder(run: EncoderRun, kernel: str) -> nn.Module:
    """The encoder of stage `kernel` ("before", "after" or "epoch-k") of `run`."""
    if kernel == "before":
        return run.untrained_encoder()
    if kernel == "after":
        return run.trained_encoder()
    epoch = float(kernel.removeprefix("epoch-"))
    return run.checkpoint_encoder(epoch)
