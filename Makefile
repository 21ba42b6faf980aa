# The course's two commands (see README.md):
#   make lab   set up .venv and open the course in JupyterLab
#   make test  set up .venv and run the whole test suite (quick mode, CPU), the book's test apart (make test-book)
#   make chapters  run every chapter in full mode, as a learner does, with its assertions (~20 min; not in CI)
#   make book  the course as a static site in _build/html: the chapters executed in full mode (again only when a
#              chapter or the package changed), the exercises, the glossary and the results (tools/build_book.py)
#   make test-book  the quick-mode book from the chapters `make test` executed, then its browser test (CI)
#   make cluster   add Ray to .venv (optional): training seeds and sweeps side by side (README, "Many seeds")
# Re-running either is fast: .venv is rebuilt only when requirements.txt or
# pyproject.toml change (the book's packages, requirements-book.txt, are added on top by `make book`).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BOOK_STAMP := $(VENV)/.installed-book

.PHONY: lab test chapters book test-book clean cluster

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

# tests/test_book.py reads the book, which is built from what this run executes: `make test-book` runs it.
test: $(STAMP)
	METARL_QUICK=1 METARL_DEVICE=cpu $(BIN)/python -m pytest --ignore=tests/test_book.py

chapters: $(STAMP)
	$(BIN)/python tools/run_chapters.py

$(BOOK_STAMP): $(STAMP) requirements-book.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-book.txt
	touch $(BOOK_STAMP)

# BOOK_FLAGS: more options for tools/build_book.py, e.g. BOOK_FLAGS="--quick" or "--jobs 1".
book: $(BOOK_STAMP)
	$(BIN)/python tools/build_book.py $(BOOK_FLAGS)

# --no-execute: every chapter must come from `make test`'s run; a missing or outdated one is an error.
test-book: $(BOOK_STAMP)
	METARL_DEVICE=cpu $(BIN)/python tools/build_book.py --quick --no-execute
	METARL_QUICK=1 METARL_DEVICE=cpu $(BIN)/python -m pytest -n 0 tests/test_book.py

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
