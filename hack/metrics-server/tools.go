//go:build tools

// Package tools pins metrics-server, which hack/addons.sh builds with
// `go build` against the same k8s.io libraries as the cluster (v0.30.14, see
// go.mod), so the Go build cache of hack/k8s serves most of it; never compiled itself.
package tools

import (
	_ "sigs.k8s.io/metrics-server/cmd/metrics-server"
)
