"""deepalign.kernels: gpytorch kernels over arms given as item indices.

Every kernel takes ``... x n x 1`` float tensors of item indices (`arm_inputs`), so BoTorch's
``SingleTaskGP(train_X, train_Y, covar_module=kernel)``, `MaxPosteriorSampling` and
`optimize_acqf_discrete` work unchanged; ``kernel.full_matrix()`` gives the
``n_arms x n_arms`` covariance.
"""

from deepalign.kernels.deep import DeepKernel
from deepalign.kernels.index import arm_indices, arm_inputs, gather_covariance
from deepalign.kernels.matrix import MatrixKernel
from deepalign.kernels.psd import (
    PSDRepair,
    PSDRepairWarning,
    repair_psd,
    validate_mask,
    validate_square_matrix,
)
from deepalign.kernels.reference import (
    constant_kernel,
    constant_matrix,
    identity_kernel,
    identity_matrix,
)
from deepalign.kernels.spectrum import NEAR_CONSTANT_TOP_SHARE, kernel_spectrum
from deepalign.kernels.synthetic import (
    SyntheticMatrix,
    synthetic_aligned_kernel,
    synthetic_aligned_matrix,
)

__all__ = [
    "NEAR_CONSTANT_TOP_SHARE",
    "DeepKernel",
    "MatrixKernel",
    "PSDRepair",
    "PSDRepairWarning",
    "SyntheticMatrix",
    "arm_indices",
    "arm_inputs",
    "constant_kernel",
    "constant_matrix",
    "gather_covariance",
    "identity_kernel",
    "identity_matrix",
    "kernel_spectrum",
    "repair_psd",
    "synthetic_aligned_kernel",
    "synthetic_aligned_matrix",
    "validate_mask",
    "validate_square_matrix",
]
