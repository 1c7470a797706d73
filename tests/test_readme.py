"""Every fenced Python block of README.md runs as written (issue 15).

The blocks run in a scratch directory that holds what the README says a user has at that
point: the repository's `examples/` and, standing in for the encoder that `make train`
writes to `runs/spa-verb/version_0/encoder`, the pretrained default encoder exported there.
"""

import re
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(),
                    flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from deepalign.encoders import SentenceEncoder, export_encoder

    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "examples", root / "examples")
    export_encoder(SentenceEncoder(), root / "runs" / "spa-verb" / "version_0" / "encoder")
    return root


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_readme_python_block_runs(k, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    namespace: dict = {"__name__": f"readme_block_{k}"}
    exec(compile(BLOCKS[k], f"README.md python block {k + 1}", "exec"), namespace)
    # each block leaves what it promises
    checked = 0
    if "mine" in namespace:
        assert len(namespace["mine"].items) == 50
        checked += 1
    if "embeddings" in namespace:
        norms = namespace["embeddings"].norm(dim=-1)
        assert norms.shape == (2,) and torch.allclose(norms, torch.ones(2), atol=1e-5)
        checked += 1
    if "model" in namespace:
        model = namespace["model"]
        mean = model.posterior(torch.arange(10, dtype=torch.float64).unsqueeze(-1)).mean
        assert mean.shape == (10, 1) and torch.isfinite(mean).all()
        checked += 1
    assert checked, "a README block whose result no check looks at"
