#!/usr/bin/env bash
# Provide etcd, kube-apiserver, kubectl and helm at the pinned versions for the test harness and
# `barrack-operator dev-cluster`, and print the cache directory that holds the ones it built.
#
# A binary found in $KUBEBUILDER_ASSETS (the envtest convention) is used as it is. Any other is
# built once with the Go toolchain through the pinned helper modules in hack/tools/ and cached
# under ${XDG_CACHE_HOME:-~/.cache}/barrack-operator/bin/<versions>/, so later runs cost nothing.
# The versions are the ones pinned in hack/tools/*/go.mod; operator/barrack_operator/devcluster/
# binaries.py names the same versions (a unit test checks that they agree).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/hack/tools"

version_of() { awk -v mod="$2" '$1 == "require" && $2 == mod { print $3 }' "$tools/$1/go.mod"; }
kube="$(version_of kube k8s.io/kubernetes)"
etcd="$(version_of etcd go.etcd.io/etcd/server/v3)"
helm="$(version_of helm helm.sh/helm/v3)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/barrack-operator/bin/kube-${kube#v}_etcd-${etcd#v}_helm-${helm#v}"

have() { [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$1" ]] || [[ -x "$cache/$1" ]]; }

build() { # build NAME MODULE_DIR PACKAGE [LDFLAGS]
  local name="$1" dir="$2" pkg="$3" ldflags="${4:-}"
  have "$name" && return 0
  command -v go >/dev/null || { echo "control-plane: go is needed to build $name" >&2; exit 1; }
  echo "control-plane: building $name ($pkg); the first build takes minutes" >&2
  mkdir -p "$cache"
  local started=$SECONDS
  (cd "$tools/$dir" && GOFLAGS=-mod=mod go build -ldflags "-s -w $ldflags" \
      -o "$cache/$name.partial" "$pkg")
  mv "$cache/$name.partial" "$cache/$name"
  echo "control-plane: built $name in $((SECONDS - started))s, $(du -h "$cache/$name" | cut -f1)" >&2
}

kv="${kube#v}"; minor="${kv#*.}"; minor="${minor%%.*}"
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$kube -X k8s.io/component-base/version.gitMajor=1"
kube_ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
kube_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$kube"
build etcd etcd go.etcd.io/etcd/server/v3
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
build kubectl kube k8s.io/kubernetes/cmd/kubectl "$kube_ldflags"
build helm helm helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$helm"
echo "$cache"
