//go:build tools

// Package tools pins BuildKit's commands (buildctl, buildkitd) for
// hack/buildkit.sh: `go build` of these import paths, at the version in
// go.mod, gives the binaries the local cluster's images carry.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
