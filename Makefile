# The course's two commands (see README.md):
#   make lab   set up .venv and open the course in JupyterLab
#   make test  set up .venv and run the whole test suite (quick mode, CPU)
#   make chapters  run every chapter in full mode, as a learner does, with its assertions (~20 min; not in CI)
#   make cluster   add Ray to .venv (optional): training seeds and sweeps side by side (README, "Many seeds")
# Re-running either is fast: .venv is rebuilt only when requirements.txt or
# pyproject.toml change.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test chapters clean cluster

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, found " + sys.version' \
		|| { echo "Set PYTHON to a Python 3.11 interpreter, e.g. make test PYTHON=python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)
	METARL_QUICK=1 METARL_DEVICE=cpu $(BIN)/python -m pytest

chapters: $(STAMP)
	$(BIN)/python tools/run_chapters.py

clean:
	rm -rf $(VENV)

CLUSTER_STAMP := $(VENV)/.installed-cluster
$(CLUSTER_STAMP): requirements-cluster.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-cluster.txt
	touch $@

cluster: $(CLUSTER_STAMP)

# Classroom (see README, "Teaching with the exercises"):
#   make exercises                                   regenerate exercises/ from solutions/
#   make grade SUBMISSIONS=DIR ASSIGNMENT=NAME [OUT=grades.csv] [JOBS=N]   grade a class (feedback in classroom/feedback)
OUT ?= grades.csv
.PHONY: exercises grade
exercises: $(STAMP)
	$(BIN)/python -m metarl_course.grading generate

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" -a -n "$(ASSIGNMENT)" || { echo "usage: make grade SUBMISSIONS=DIR ASSIGNMENT=NAME [OUT=grades.csv]"; exit 2; }
	$(BIN)/python -m metarl_course.grading grade --submissions "$(SUBMISSIONS)" --assignment "$(ASSIGNMENT)" --out "$(OUT)" \
		$(if $(JOBS),--jobs "$(JOBS)")
