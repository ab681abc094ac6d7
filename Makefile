# dynamo-lab: the two commands of the README, and the longer runs.
#   make lab       create .venv, install, open JupyterLab on labs/ (as a student: no instructor tools)
#   make test      create .venv if needed, install, run the whole suite
#   make instructor  JupyterLab on the whole checkout with nbgrader's Formgrader and Create Assignment
#   make bench     benchmarks that print figures
#   make campaign  the long seeded fault campaign
#   make campaign-bayou  1,000 seeds of the Bayou campaign (dynamo_lab.bayou)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= auto

.PHONY: lab instructor test bench campaign campaign-bayou release selfcheck clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "dynamo-lab needs Python 3.10 or newer (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $(STAMP)

# JupyterLab refuses to run as root unless told; containers (Binder, Docker) often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

# Jupyter configuration on top of the environment's (dynamo_lab/jupyter/README.md): the course's
# for everyone (arrow keys on a focused slider move the slider, in Notebook 7 too), and the
# student's, which hides nbgrader's instructor tools. Per command, so one .venv serves both.
JUPYTER_COURSE  := $(CURDIR)/dynamo_lab/jupyter/course
JUPYTER_STUDENT := $(CURDIR)/dynamo_lab/jupyter/student

lab: $(STAMP)
	JUPYTER_CONFIG_PATH=$(JUPYTER_STUDENT):$(JUPYTER_COURSE) $(PY) -m jupyter lab $(ROOT_FLAG) labs/

# From grader/, where the Formgrader finds nbgrader_config.py; the whole checkout is browsable.
instructor: $(STAMP)
	cd grader && JUPYTER_CONFIG_PATH=$(JUPYTER_COURSE) ../$(PY) -m jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=$(CURDIR)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q

bench: $(STAMP)
	$(PY) -m bench

campaign: $(STAMP)
	$(PY) -m dynamo_lab.campaign --seeds 200 --ops 2000

campaign-bayou: $(STAMP)
	$(PY) -m dynamo_lab.bayou.campaign --seeds 1000 --quiet

release: $(STAMP)
	$(PY) -m grader release

selfcheck: $(STAMP)
	$(PY) -m grader selfcheck

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
