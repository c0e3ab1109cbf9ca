# Each target sets the machine up first (hack/setup.sh is idempotent and quick once done).
PYTHON := .venv/bin/python

.PHONY: setup demo test bench soak crds deploy

setup:
	bash hack/setup.sh

demo: setup
	$(PYTHON) hack/demo.py

test:
	bash hack/test.sh

bench: setup
	$(PYTHON) hack/bench.py $(ARGS)

soak: setup
	$(PYTHON) hack/soak.py $(ARGS)

crds: setup
	$(PYTHON) -m barrack_operator.cli crds -o crds
	cp crds/*.yaml charts/barrack-operator/crds/
	$(PYTHON) -m barrack_operator.cli api-reference -o docs/api-reference.md

deploy: setup
	$(PYTHON) hack/render-deploy.py
