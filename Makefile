# Two commands do everything on a fresh machine with python3 (3.11):
#   make run    create/refresh .venv, install the pinned set, run the DVC pipeline (dvc repro)
#   make test   same set-up, then the test suite (make test-fast: without dvc, servers and the browser; make lint)
# `make run PROFILE=quick` applies profiles/quick.yaml (a params overlay; `paper` is the full recipe) and
# `SET="train.epochs=2 data.train_size=5000"` one-off overrides: both become `dvc exp run -S key=value ...`, every
# string value quoted for Hydra (cnn_pruning.pipeline.profiles), and both stay in params.yaml until `git checkout params.yaml`.
# `TARGETS=report` (or `study`) runs only that stage and what it needs; `NAME=quick-05` names the DVC experiment.
# Both are idempotent: the venv is rebuilt only when requirements.lock or pyproject.toml change.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# Nothing the project runs may phone home.
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export PATH := $(BIN):$(PATH)

.PHONY: run test test-fast lint setup plots-page exp study-table lock mlflow-ui mlflow-server mlflow-server-stop plots clean-venv

run: setup
ifeq ($(strip $(SET)$(PROFILE)$(NAME)),)
	dvc repro $(TARGETS)
else
	@args="$(if $(NAME),-n $(NAME)) $$(python -m cnn_pruning.pipeline.profiles --profile '$(PROFILE)' $(SET))" && \
		echo "dvc exp run $$args $(TARGETS)" && eval "dvc exp run $$args $(TARGETS)"
endif

# The suite on every core, at most 4 (pytest-xdist; TEST_WORKERS=0 runs it in one process): tests that share a
# module's server or copy stay on one worker (xdist_group marks), in the order conftest.py gives; the 25 slowest are
# printed. `make test-fast`: the edit loop, without the tests that drive dvc, start servers or a browser.
TEST_WORKERS ?= auto
XDIST = -n $(TEST_WORKERS) --maxprocesses=4 --dist loadgroup --no-loadscope-reorder
test: setup
	python -m pytest $(XDIST) --durations=25 $(PYTEST_ARGS)

test-fast: setup
	python -m pytest $(XDIST) -m "not dvc and not server and not browser" $(PYTEST_ARGS)

# The linter, configured in pyproject.toml (CI runs it before the tests).
lint: setup
	ruff check .

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# `dvc plots show` renders offline from a fresh clone: .dvc/config names the committed page tools/vega/offline.html,
# with Vega, Vega-Lite and vega-embed inlined. Rebuild it after changing tools/vega/package-lock.json.
plots-page:
	npm ci --prefix tools/vega --silent --no-audit --no-fund
	$(PYTHON) tools/offline_plots.py

# Re-resolve the pinned set from scratch (needs the package index).
lock:
	rm -rf /tmp/cnn-pruning-lock && $(PYTHON) -m venv /tmp/cnn-pruning-lock
	/tmp/cnn-pruning-lock/bin/pip install --quiet torch==2.14.1 torchvision==0.29.1 "dvc>=3,<4" "mlflow>=3,<4" \
		scikit-learn pyyaml tqdm matplotlib pandas pytest pytest-xdist ruff==0.17.6 onnx onnxruntime openvino torch-pruning==1.6.1 nvidia-ml-py \
		dvc-ssh
	(head -3 requirements.lock; /tmp/cnn-pruning-lock/bin/pip freeze --all --exclude-editable | grep -v '^pip==') > requirements.lock.new
	mv requirements.lock.new requirements.lock

# Browse the runs: it prints the experiment's page in MLflow's Model-training view (README "Tracking, browsing and sharing").
MLFLOW_UI_PORT ?= 5000
mlflow-ui: setup
	@echo "Open $$(MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlflow.db python -m cnn_pruning.tracking url http://127.0.0.1:$(MLFLOW_UI_PORT))"
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(MLFLOW_UI_PORT)

# A shared MLflow tracking server (SQLite store and artifacts under .mlflow-server/, port MLFLOW_PORT).
# It prints the line to run: export MLFLOW_TRACKING_URI=http://127.0.0.1:5001  (eval "$$(make -s mlflow-server)")
MLFLOW_PORT ?= 5001
mlflow-server: setup
	tools/mlflow_server.sh start --port $(MLFLOW_PORT)

mlflow-server-stop:
	tools/mlflow_server.sh stop

# The experiments side by side in 160 columns: per experiment its ratio and epochs, and one headline metric of the
# control and each method (`SHOW=acc`: test accuracy after fine-tuning (%); speedup, size (x smaller), macs (M)).
SHOW ?= acc
exp: setup
	@COLUMNS=$${COLUMNS:-160} dvc exp show --no-pager --precision 3 --drop '.*' \
		--keep '^(Experiment|prune\.ratio|train\.epochs)$$|^(?!base-)[a-z0-9_]+\.$(SHOW)$$'

# The study's answer: accuracy after fine-tuning per method and ratio (mean ± std over seeds) against the control.
study-table: setup
	@python -m cnn_pruning.study.table results/study/summary.csv

# Write the DVC plots page (dvc_plots/index.html).
plots: setup
	dvc plots show

clean-venv:
	rm -rf $(VENV)
