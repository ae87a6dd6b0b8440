# Two commands do all set-up on a fresh machine:
#   make demo   - virtual environment, install, enhance the bundled HDR demo clip into out/demo_hdr
#   make test   - virtual environment, install, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-deblur test bench clean

# RAFT weights for the deblur demo: vidcam downloads none at run time, and reads no fixed path. A
# checkout beside ../shared gets RAFT small from there (`make demo-deblur DEMO_RAFT=` for DIS flow).
# (HDR clips get DIS flow whatever the weights: README, "Optical flow weights".)
DEMO_RAFT ?= $(abspath $(wildcard ../shared/weights/raft-small.pth))
RAFT_ENV := $(if $(DEMO_RAFT),VIDCAM_RAFT_CHECKPOINT=$(DEMO_RAFT))

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch and torchvision must come from the registry together (a lone torch wheel pairs with no torchvision)
	$(BIN)/pip install --quiet torch torchvision
	$(BIN)/pip install --quiet -e ".[test,ray]"
	touch $(STAMP)

demo: $(STAMP)
	rm -rf out/demo_hdr
	$(BIN)/vidcam enhance assets/demo_hdr.mp4 --preset fast -o out/demo_hdr

demo-deblur: $(STAMP)
	rm -rf out/demo_blur
	$(RAFT_ENV) $(BIN)/vidcam enhance assets/demo_blur.mp4 --mode deblur --preset fast --compare -o out/demo_blur

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python tools/bench.py assets/demo_hdr.mp4

clean:
	rm -rf $(VENV) out
