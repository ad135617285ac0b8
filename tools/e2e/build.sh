#!/usr/bin/env bash
# Builds, from k8s.io/kubernetes at the lab's pin (tools/e2e/module), the upstream e2e test binary
# (`e2e.test`: `go test -c` of tools/e2e/module/suite, the framework and test/e2e/network only) and
# agnhost, the e2e specs' test image binary, into a cache outside the repo under a key of its own
# (go.mod + go.sum, the suite, this script, the Go toolchain). Prints the bin dir.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mod="$here/module"
cache_root="${IRONLB_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ironlb/tools}"
key="e2e-$( (go version; cat "$mod/go.mod" "$mod/go.sum" "$mod/suite/suite_test.go" "$here/build.sh") \
  | sha256sum | cut -c1-16)"
bin="$cache_root/$key/bin"
if [ -x "$bin/e2e.test" ] && [ -x "$bin/agnhost" ]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
k8s_version="$(cd "$mod" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
done
if [ ! -x "$bin/agnhost" ]; then
  echo "building agnhost (k8s.io/kubernetes/test/images/agnhost $k8s_version)" >&2
  (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$bin/agnhost.tmp" k8s.io/kubernetes/test/images/agnhost)
  mv "$bin/agnhost.tmp" "$bin/agnhost"
fi
if [ ! -x "$bin/e2e.test" ]; then
  echo "building e2e.test (test/e2e/network $k8s_version)" >&2
  (cd "$mod" && go test -c -vet=off -trimpath -ldflags "$ldflags" -o "$bin/e2e.test.tmp" ./suite)
  mv "$bin/e2e.test.tmp" "$bin/e2e.test"
fi
# The image tags the framework at this pin expects (test/utils/image/manifest.go), one "NAME TAG" a line.
manifest="$(cd "$mod" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/utils/image/manifest.go"
sed -nE 's/^[[:space:]]*configs\[(Agnhost|Pause)\] = Config\{[^,]+, "([a-z]+)", "([^"]+)"\}.*/\2 \3/p' "$manifest" \
  > "$bin/image-tags"
[ "$(wc -l < "$bin/image-tags")" = 2 ] || { echo "cannot read agnhost's and pause's tags from $manifest" >&2; exit 1; }
echo "$bin"
