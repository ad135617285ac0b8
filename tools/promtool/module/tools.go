//go:build tools

// Package tools pins Prometheus; `go build github.com/prometheus/prometheus/cmd/promtool` builds
// its rule checker and tester. The import keeps promtool's dependencies and checksums in go.sum
// under `go mod tidy`.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
