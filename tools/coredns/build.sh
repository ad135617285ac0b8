#!/usr/bin/env bash
# Builds CoreDNS (the real-node lab's cluster DNS, `up --kubelet --conformance`) from the pinned Go
# module in tools/coredns/module into a cache outside the repo, under a key of its own (go.mod + go.sum,
# main.go, this script, the Go toolchain). Prints the path of the binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mod="$here/module"
cache_root="${IRONLB_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ironlb/tools}"
key="coredns-$( (go version; cat "$mod/go.mod" "$mod/go.sum" "$mod/main.go" "$here/build.sh") | sha256sum | cut -c1-16)"
bin="$cache_root/$key/bin"
if [ -x "$bin/coredns" ]; then echo "$bin/coredns"; exit 0; fi
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
version="$(cd "$mod" && go list -m -f '{{.Version}}' github.com/coredns/coredns)"
echo "building coredns ($version)" >&2
(cd "$mod" && go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$version" \
  -o "$bin/coredns.tmp" .)
mv "$bin/coredns.tmp" "$bin/coredns"
echo "$bin/coredns"
