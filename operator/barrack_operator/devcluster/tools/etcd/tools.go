//go:build tools

// Package tools pins etcd's server command. In the 3.5 line the `etcd` main package lives in
// go.etcd.io/etcd/server/v3, whose go.mod replaces its sibling modules with local paths, so it is
// built through this helper module rather than `go install`.
package tools

import _ "go.etcd.io/etcd/server/v3"
