"""A small client of the OCI distribution API (`/v2/`), shared by the operator and the SDK.

It stands on the standard library and urllib3 only (the SDK may import it: see
.importlinter), and it speaks to registries the way `docker pull` does:
credentials from a docker config.json (`auths`), HTTP Basic or the distribution
token flow (a 401 with `WWW-Authenticate: Bearer realm=...` -> a token -> the
request again), manifests and image indexes, blobs checked against their digests.

- reference: image references (`host/repo:tag@sha256:...`) and Docker Hub's defaults
- auth: docker config.json look-ups and `WWW-Authenticate` parsing (pure)
- client: the HTTP conversation (`Distribution`)
- layers: the files of an image, read from its layer blobs (no engine)
"""
