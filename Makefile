# Two entry points that work on a fresh clone: `make demo` (the main job) and `make test`.
# Both create .venv and install what they need; torch is pinned and installed first so that no
# other requirement pulls a multi-GB CUDA build on a CPU machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.meshlm-installed

.PHONY: demo test install lint bench clean bundled-model

# the shape families of the bundled model (v5): those whose meshes at --max-segments 6 come in
# few face-index templates (see models/meshlm-bundled/README.md)
BUNDLED_FAMILIES := box cone cylinder pyramid arch stairs table bowl bench mug cup hammer capsule sphere torus car axe house tower sword

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[all,gguf,dev]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/meshlm generate "a wooden table with four legs" \
		-o out/demo/table.obj -o out/demo/table.glb --png out/demo/table.png

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check meshlm tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/codec.py

# Rebuild the bundled model from scratch (about 1 h 40 min on a 2-core CPU): data, training,
# GGUF export.
bundled-model: $(STAMP)
	$(BIN)/meshlm build-data --procedural 14000 --max-segments 6 --rotations 0 --max-faces 200 \
		--multi-turn 0.1 --mix 0.6,0.4,0 --max-length 3072 --seed 0 --out data/bundled -j 2 \
		--overwrite $(foreach f,$(BUNDLED_FAMILIES),--family $(f))
	$(BIN)/meshlm train --config recipes/bundled.yaml
	$(BIN)/meshlm export-gguf models/meshlm-bundled -o models/meshlm-bundled/model-f16.gguf \
		--dtype f16

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
