# The course's commands. `make lab` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.course-installed
BROWSER_STAMP := $(VENV)/.browser-test-installed
# Extra flags for `jupyter lab` (the tests pass --no-browser and a free port).
LAB_FLAGS ?=
# Containers and lab images often run as root, where JupyterLab refuses to start without this.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

.PHONY: lab test course check-binder student-exercises lint clean help

help:
	@echo "make lab      set up (first run only) and open the course in JupyterLab"
	@echo "make test     set up (first run only) and run every test, notebooks in fast mode"
	@echo "make course   execute every notebook in full mode and write an HTML copy to build/"
	@echo "make check-binder   run every notebook in full mode with one thread; fail above 1.8 GB"
	@echo "make student-exercises   regenerate exercises/NN_*.ipynb from exercises/solutions/"
	@echo "make lint     ruff over the library, tests, tools and benchmarks"

$(STAMP): pyproject.toml tools/bootstrap.py
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "Set-up stopped: '$(PYTHON)' was not found. Install Python 3.10 or newer" \
	       "(python.org, your package manager, or conda: conda env create -f environment.yml)."; \
	  exit 1; }
	@$(PYTHON) tools/bootstrap.py

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.default_url=/lab/tree/notebooks/00_start_here.ipynb $(LAB_FLAGS)

# Playwright drives the browser test; only `make test` needs it, so `make lab` skips it.
$(BROWSER_STAMP): $(STAMP)
	@echo "Adding Playwright for the browser test..."
	@$(BIN)/python -m pip install -qq -e ".[test,browser]"
	@touch $@

test: lint $(BROWSER_STAMP)
	COURSE_FAST=1 $(BIN)/python -m pytest

course: $(STAMP)
	$(BIN)/python tools/build_course.py

check-binder: $(STAMP)
	$(BIN)/python tools/build_course.py --threads 1 --max-memory-gb 1.8

lint: $(STAMP)
	$(BIN)/ruff check course_lib tests tools benchmarks

clean:
	rm -rf build

# The learners' exercise notebooks, generated from the instructor versions in exercises/solutions/.
student-exercises: $(STAMP)
	$(BIN)/python tools/make_student_exercises.py
