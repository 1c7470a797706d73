"""deepalign.studies: study grids, the resumable results table, statistics and analyses.

Three studies (Wynn, Sucholutsky & Griffiths 2024, extended): synthetic kernels of controlled
alignment, real human judgments with real kernels, and trained vs untrained encoders.
"""

from deepalign.studies.analysis import analyse_real, analyse_synthetic, analyse_trained
from deepalign.studies.benchmark import BenchmarkResult, BenchmarkRow, run_benchmark
from deepalign.studies.config import (
    RealStudyConfig,
    StudyConfig,
    SyntheticStudyConfig,
    TrainedStudyConfig,
    TransferConfig,
    load_study_config,
)
from deepalign.studies.distributed import RayOptions, StudyTaskError
from deepalign.studies.grid import Cell
from deepalign.studies.pipeline import StudyRun, run_study
from deepalign.studies.results import COLUMNS, ResultsStore, ResultsTable, read_table, write_table
from deepalign.studies.stats import (
    bootstrap_ci,
    mean_sem,
    paired_comparison,
    spearman,
    wilcoxon_signed_rank,
)

__all__ = [
    "BenchmarkResult",
    "BenchmarkRow",
    "COLUMNS",
    "Cell",
    "RealStudyConfig",
    "ResultsStore",
    "RayOptions",
    "ResultsTable",
    "StudyConfig",
    "StudyRun",
    "StudyTaskError",
    "SyntheticStudyConfig",
    "TrainedStudyConfig",
    "TransferConfig",
    "analyse_real",
    "analyse_synthetic",
    "analyse_trained",
    "bootstrap_ci",
    "load_study_config",
    "mean_sem",
    "paired_comparison",
    "read_table",
    "run_benchmark",
    "run_study",
    "spearman",
    "wilcoxon_signed_rank",
    "write_table",
]
