"""Lightning layer: LightningModule, DataModule and callbacks for alignment training.

`train_alignment` (`trainers.run`) wires these together and trains; `python -m
deepalign.train` wraps it. The model logic lives in `deepalign.encoders` and
`deepalign.alignment`.
"""

from trainers.callbacks import AlignmentTensorBoard
from trainers.checkpoints import VerifiedCheckpoint, find_last_checkpoint, validate_checkpoint
from trainers.datamodule import AlignmentDataModule, TrainingSet
from trainers.evaluation import MEASURES, measure_splits
from trainers.export import RunArtifacts
from trainers.module import AlignmentModule
from trainers.run import TrainingRun, train_alignment  # noqa: E402  (needs the rest)
from trainers.splits import SPLITS, AlignmentData, build_alignment_data

__all__ = [
    "MEASURES",
    "SPLITS",
    "AlignmentData",
    "AlignmentDataModule",
    "AlignmentModule",
    "AlignmentTensorBoard",
    "RunArtifacts",
    "TrainingRun",
    "TrainingSet",
    "VerifiedCheckpoint",
    "build_alignment_data",
    "find_last_checkpoint",
    "measure_splits",
    "train_alignment",
    "validate_checkpoint",
]
