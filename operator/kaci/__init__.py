"""kaci: Azure ML's "deploy a model to ACI" workflow as a Kubernetes operator."""

GROUP = "kaci.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

__all__ = ["API_VERSION", "GROUP", "VERSION"]
