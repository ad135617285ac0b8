#!/usr/bin/env bash
# Builds MetalLB's speaker and controller from the pinned Go module in tools/metallb/module into a
# cache outside the repo, with MetalLB's CRDs beside them. Its own cache key (go.mod + go.sum, this
# script, the Go toolchain), so the Kubernetes binaries' key (tools/build.sh) is left as it was.
# Prints the bin dir (speaker, controller, crds/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mod="$here/module"
cache_root="${IRONLB_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ironlb/tools}"
key="metallb-$( (go version; cat "$mod/go.mod" "$mod/go.sum" "$here/build.sh") | sha256sum | cut -c1-16)"
bin="$cache_root/$key/bin"
if [ -x "$bin/speaker" ] && [ -x "$bin/controller" ] && [ -f "$bin/crds/metallb.io_ipaddresspools.yaml" ]; then
  echo "$bin"; exit 0
fi
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
version="$(cd "$mod" && go list -m -f '{{.Version}}' go.universe.tf/metallb)"
ldflags="-s -w"  # the module sets its own version (internal/version)
for prog in speaker controller; do
  [ -x "$bin/$prog" ] && continue
  echo "building MetalLB $prog ($version)" >&2
  (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$bin/$prog.tmp" "go.universe.tf/metallb/$prog")
  mv "$bin/$prog.tmp" "$bin/$prog"
done
src="$(cd "$mod" && go list -m -f '{{.Dir}}' go.universe.tf/metallb)"
rm -rf "$bin/crds.tmp" && mkdir -p "$bin/crds.tmp"
cp "$src"/config/crd/bases/*.yaml "$bin/crds.tmp/" && chmod 644 "$bin/crds.tmp"/*.yaml
rm -rf "$bin/crds" && mv "$bin/crds.tmp" "$bin/crds"
echo "$version" > "$bin/VERSION"
echo "$bin"
