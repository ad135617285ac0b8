//go:build tools

// Package tools pins helm; `go build helm.sh/helm/v3/cmd/helm` builds it. The imports mirror the
// packages cmd/helm uses, so `go mod tidy` keeps their checksums.
package tools

import (
	_ "github.com/gofrs/flock"
	_ "github.com/spf13/cobra/doc"
	_ "helm.sh/helm/v3/pkg/action"
	_ "helm.sh/helm/v3/pkg/plugin/installer"
)
