//go:build tools

// Package tools pins MetalLB; `go build go.universe.tf/metallb/speaker` and `.../controller` build
// it. The imports keep both programs' dependencies and checksums in go.sum under `go mod tidy`.
package tools

import (
	_ "go.universe.tf/metallb/controller"
	_ "go.universe.tf/metallb/speaker"
)
