//go:build tools

// Package tools pins the Kubernetes control-plane commands that the test harness builds:
// kube-apiserver, kube-controller-manager and kubectl, from k8s.io/kubernetes with its staging
// modules replaced by their published versions (k8s.io/kubernetes itself replaces them with local paths, so it cannot be
// `go install`ed directly).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
