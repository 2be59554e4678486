//go:build tools

// kube-router for the local test cluster, its network policy controller only (see
// hack/README.md): the bridge CNI enforces no NetworkPolicy, kube-router does, with
// iptables and ipset, which this kernel has.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
