# A pkgutil-style namespace, like Azure's own `azureml` packages, so other
# installed azureml.* portions stay importable next to this stand-in.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
