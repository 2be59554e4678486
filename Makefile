# kaci — the two commands a user needs: `make demo` and `make test`.
SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
export KUBECONFIG := $(ROOT)/.cluster/kubeconfig
export PATH := $(ROOT)/.cluster/bin:$(VENV)/bin:$(PATH)
CLUSTER ?= local

.PHONY: help deps venv lint cluster cluster-down base-images test test-unit test-component test-cluster demo bench-runtime bench-deploy bench-scale bench-scale-kwok bench-serving clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

deps: ## install the Debian packages kaci's local cluster needs (root)
	hack/install-deps.sh

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## the Python environment (.venv) with kaci and its test tools

lint: venv ## ruff, mypy --strict and the import-linter contracts (.importlinter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PYTHONPATH=operator:scoring-runtime $(VENV)/bin/lint-imports

cluster: deps ## start the local cluster: Docker engine, registry, etcd, control plane, kubelet (idempotent)
	hack/cluster.sh up

cluster-down: ## stop every process `make cluster` started, by PID
	hack/cluster.sh down

base-images: deps ## the pause image, the Python base image and the wheelhouse, pushed to the local registry
	hack/cluster.sh docker

test: venv lint ## every tier: unit, component (Docker), cluster (the local cluster, started if needed)
	$(PY) -m pytest

test-unit: venv
	$(PY) -m pytest -m unit

test-component: venv
	$(PY) -m pytest -m component

test-cluster: venv
	$(PY) -m pytest -m cluster

demo: venv ## kaci's main job: the MNIST walkthrough deployed the three Azure ways (CLUSTER=local|kind)
	$(if $(filter local,$(CLUSTER)),$(MAKE) cluster)
	hack/demo.sh $(CLUSTER)

bench-runtime: venv ## scoring runtime vs azureml-inference-server-http, MLServer, KServe and the in-process floor
	bench/runtime/run.sh

bench-deploy: venv cluster ## seconds from kubectl apply to Ready, the three options, cold and warm (local cluster)
	$(PY) bench/deploy/run.py

bench-serving: venv ## AKS serving: 1/2/4 replicas (req/s, p99), the HPA's reaction, Ingress vs ClusterIP (local cluster)
	$(PY) bench/serving/run.py

bench-scale: venv ## operator: converge 10/50/100 Webservices and 1,000 Models; its RSS and CPU (local cluster)
	$(PY) bench/scale/run.py

bench-scale-kwok: venv ## operator at scale on 100 kwok nodes: 100/1,000 Webservices, 1,000 Models; CPU, RSS, API requests, update, rest, restart
	$(PY) bench/scale/kwok.py

clean: cluster-down
	rm -rf .cluster .venv
