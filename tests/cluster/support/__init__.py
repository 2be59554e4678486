"""Helpers the cluster tests share (the fixtures live in tests/cluster/conftest.py).

- kaci_operator: the operator as a subprocess, the MNIST training, scoring a Service;
- faults: objects and engine/registry restarts for the fault tests;
- chart: Helm releases of the chart for the chart tests;
- sdk: the SDK walkthrough's working folder.
"""
