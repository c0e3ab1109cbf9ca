"""barrack-operator: Barrack GPU-cloud resources as Kubernetes custom resources."""

__version__ = "0.1.0"
