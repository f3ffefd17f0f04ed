# Two entry points that work on a fresh clone: `make demo` (the main job) and `make test`.
# Both create .venv and install what they need; torch is pinned and installed first so that no
# other requirement pulls a multi-GB CUDA build on a CPU machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.meshlm-installed

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[all,gguf,dev]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/meshlm demo -o out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check meshlm tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/codec.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
