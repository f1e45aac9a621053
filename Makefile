# Two entry points: `make demo` (the main job) and `make test`.
# Both create .venv with the pinned, matched torch/torchaudio pair first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo lint bench clean-venv

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	# torch and torchaudio from the same index, pinned as a pair.
	$(PY) -m pip install --quiet -c requirements/constraints.txt \
		torch torchaudio
	$(PY) -m pip install --quiet -c requirements/constraints.txt \
		-e ".[dev,plots]"
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/yamllint --strict recipes
	OMP_NUM_THREADS=2 $(PY) -m pytest -q --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/yamllint --strict recipes

bench: $(STAMP)
	$(PY) benchmarks/frontend_speed.py

demo: $(STAMP)
	$(PY) recipes/DCASE2020/demo.py

clean-venv:
	rm -rf $(VENV)
