"""kaci_runtime: serves an Azure ML score.py (init()/run()) over HTTP.

Kept free of the operator's dependencies: scoring images install only this
package and its light `runtime` extra (httptools, orjson, prometheus-client).
"""

__version__ = "0.1.0"
