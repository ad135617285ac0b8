#!/usr/bin/env bash
# Builds promtool (the chart's alert tests: `promtool check rules`, `promtool test rules`) from the
# pinned Go module in tools/promtool/module into a cache outside the repo. Its own cache key (go.mod +
# go.sum, this script, the Go toolchain), so the Kubernetes binaries' key (tools/build.sh) is left as
# it was. Prints the path of the binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mod="$here/module"
cache_root="${IRONLB_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ironlb/tools}"
key="promtool-$( (go version; cat "$mod/go.mod" "$mod/go.sum" "$here/build.sh") | sha256sum | cut -c1-16)"
bin="$cache_root/$key/bin"
if [ -x "$bin/promtool" ]; then echo "$bin/promtool"; exit 0; fi
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
version="$(cd "$mod" && go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"  # v0.3XX.Y: Prometheus 3.XX.Y
release="$(echo "$version" | sed -E 's/^v0\.([0-9])([0-9]+)\.([0-9]+)$/\1.\2.\3/')"
ldflags="-s -w -X github.com/prometheus/common/version.Version=$release"
echo "building promtool ($version)" >&2
# remove_all_sd: without the cloud service discoveries (their SDKs are most of the build; the tests
# check and test rules only).
(cd "$mod" && go build -tags remove_all_sd -trimpath -ldflags "$ldflags" -o "$bin/promtool.tmp" \
  github.com/prometheus/prometheus/cmd/promtool)
mv "$bin/promtool.tmp" "$bin/promtool"
echo "$bin/promtool"
