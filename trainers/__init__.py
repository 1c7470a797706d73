"""Lightning layer: LightningModule, DataModule and callbacks for alignment training.

`python -m deepalign.train` wires these together; the model logic lives in
`deepalign.encoders` and `deepalign.alignment`.
"""

from trainers.callbacks import AlignmentTensorBoard
from trainers.checkpoints import VerifiedCheckpoint, find_last_checkpoint, validate_checkpoint
from trainers.datamodule import AlignmentDataModule
from trainers.evaluation import MEASURES, measure_splits
from trainers.export import RunArtifacts
from trainers.module import AlignmentModule
from trainers.splits import SPLITS, AlignmentData, build_alignment_data

__all__ = [
    "MEASURES",
    "SPLITS",
    "AlignmentData",
    "AlignmentDataModule",
    "AlignmentModule",
    "AlignmentTensorBoard",
    "RunArtifacts",
    "VerifiedCheckpoint",
    "build_alignment_data",
    "find_last_checkpoint",
    "measure_splits",
    "validate_checkpoint",
]
