# The course's commands. `make lab` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.course-installed
TEST_STAMP := $(VENV)/.course-test-installed
# The versions the set-up installs: lock (the default) takes the ones pinned in constraints.txt,
# none the newest that pyproject.toml allows (`make lab PINS=none`). Passed to tools/bootstrap.py.
PINS ?= lock
export COURSE_PINS := $(PINS)
# Extra flags for `jupyter lab` (the tests pass --no-browser and a free port).
LAB_FLAGS ?=
# Containers and lab images often run as root, where JupyterLab refuses to start without this.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

.PHONY: lab test grade-demo pins course check-binder student-exercises lint clean help FORCE

help:
	@echo "make lab      set up (first run only) and open the course in JupyterLab"
	@echo "make test     set up (first run only) and run every test, notebooks in fast mode"
	@echo "make course   execute every notebook in full mode and write an HTML copy to build/"
	@echo "make check-binder   run every notebook in full mode with one thread; fail above 1.8 GB"
	@echo "make student-exercises   regenerate exercises/NN_*.ipynb from exercises/solutions/"
	@echo "make lint     ruff over the library, tests, tools and benchmarks"
	@echo "make grade-demo   nbgrader on every exercise set: release, autograde, feedback"
	@echo "make pins     newest versions, every test, then pin them in constraints.txt"

NEED_PYTHON = command -v $(PYTHON) >/dev/null 2>&1 || { \
  echo "Set-up stopped: '$(PYTHON)' was not found. Install Python 3.10 or newer" \
       "(python.org, your package manager, or conda: conda env create -f environment.yml)."; \
  exit 1; }

# tools/bootstrap.py runs every time and returns at once when .venv already matches
# pyproject.toml, constraints.txt and PINS (its stamps record them).
$(STAMP): FORCE
	@$(NEED_PYTHON)
	@$(PYTHON) tools/bootstrap.py

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.default_url=/lab/tree/notebooks/00_start_here.ipynb $(LAB_FLAGS)

# The test tools (pytest, ruff, nbgrader, Playwright): only `make test` and its kin need them.
$(TEST_STAMP): FORCE
	@$(NEED_PYTHON)
	@$(PYTHON) tools/bootstrap.py --test

# COURSE_REQUIRE_BROWSER: the browser test may be skipped only where no Chromium is installed.
# TEST_WORKERS processes share the tests a file at a time (pytest-xdist; a notebook's cells stay
# together), each with one PyTorch thread: two keep a 2-core machine busy without oversubscribing.
TEST_WORKERS ?= 2
test: lint $(TEST_STAMP)
	COURSE_FAST=1 COURSE_THREADS=1 COURSE_REQUIRE_BROWSER=1 \
	  $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The round trip tests/test_nbgrader.py checks, with its marks printed (exercises/README.md).
grade-demo: $(TEST_STAMP)
	$(BIN)/python tools/grade_demo.py

# New pins: the newest versions pyproject.toml allows, every test on them, then
# constraints.txt and environment.yml written from what passed.
pins:
	$(MAKE) test PINS=none
	$(BIN)/python tools/pins.py

course: $(STAMP)
	$(BIN)/python tools/build_course.py

check-binder: $(STAMP)
	$(BIN)/python tools/build_course.py --threads 1 --max-memory-gb 1.8

lint: $(TEST_STAMP)
	$(BIN)/ruff check course_lib tests tools benchmarks

clean:
	rm -rf build

# The learners' exercise notebooks, generated from the instructor versions in exercises/solutions/.
student-exercises: $(STAMP)
	$(BIN)/python tools/make_student_exercises.py

FORCE:
