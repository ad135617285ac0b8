#!/usr/bin/env bash
# Builds the lab's Kubernetes binaries from the pinned Go modules in tools/ into a cache outside
# the repo, keyed by the pinned versions (go.mod + go.sum) and the Go toolchain. Prints the bin dir.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${IRONLB_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ironlb/tools}"
key="$( (go version; cat "$here"/*/go.mod "$here"/*/go.sum "$here/build.sh") | sha256sum | cut -c1-16)"
bin="$cache_root/$key/bin"
k8s_version="$(sed -nE 's/^(require)?[[:space:]]*k8s\.io\/kubernetes (v[0-9.]+).*/\2/p' "$here/kubernetes/go.mod" | head -1)"
[ -n "$k8s_version" ] || { echo "cannot read the k8s.io/kubernetes version from tools/kubernetes/go.mod" >&2; exit 1; }
k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
want=(etcd kube-apiserver kube-proxy kubectl kube-controller-manager kube-scheduler kubelet pause helm)

have_all() { for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done; }
if have_all; then echo "$bin"; exit 0; fi

mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
ver_pkgs="k8s.io/component-base/version k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in $ver_pkgs; do
  ldflags="$ldflags -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
done
build() {  # build DIR OUT PKG [LDFLAGS]
  local dir="$1" out="$2" pkg="$3" flags="${4:--s -w}"
  [ -x "$bin/$out" ] && return 0
  echo "building $out ($pkg)" >&2
  (cd "$here/$dir" && go build -trimpath -ldflags "$flags" -o "$bin/$out.tmp" "$pkg")
  mv "$bin/$out.tmp" "$bin/$out"
}
build etcd etcd .
build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
build kubernetes kube-proxy k8s.io/kubernetes/cmd/kube-proxy "$ldflags"
build kubernetes kubectl k8s.io/kubernetes/cmd/kubectl "$ldflags"
build kubernetes kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"
build kubernetes kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$ldflags"
build kubernetes kubelet k8s.io/kubernetes/cmd/kubelet "$ldflags"
# The pod sandbox's pause, from the same pinned module: nothing can be pulled, the sandbox image included.
if [ ! -x "$bin/pause" ]; then
  echo "building pause (k8s.io/kubernetes/build/pause/linux/pause.c)" >&2
  k8s_dir="$(cd "$here/kubernetes" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
  gcc -Os -Wall -Werror -static -DVERSION="$k8s_version" -o "$bin/pause.tmp" "$k8s_dir/build/pause/linux/pause.c"
  mv "$bin/pause.tmp" "$bin/pause"
fi
# As helm's own release builds do: its default Kubernetes version (for `helm template` and lint)
# follows the client libraries it is built with, not the v1.20 fallback.
helm_k8s="$(cd "$here/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)"  # v0.MINOR.PATCH
helm_major=$(( $(echo "${helm_k8s#v}" | cut -d. -f1) + 1 ))
helm_minor="$(echo "$helm_k8s" | cut -d. -f2)"
helm_version="$(cd "$here/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v3)"
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.metadata="
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags="$helm_ldflags -X $p.k8sVersionMajor=$helm_major -X $p.k8sVersionMinor=$helm_minor"
done
build helm helm helm.sh/helm/v3/cmd/helm "$helm_ldflags"
echo "$bin"
