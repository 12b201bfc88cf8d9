#!/usr/bin/env bash
# The project's linters: gofmt, goimports (imports in three groups: the
# standard library, other modules, hoist's own), go vet and staticcheck.
# goimports and staticcheck come through the Go module proxy at pinned
# versions (go run fetches and caches them; nothing is installed
# system-wide).
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOIMPORTS=golang.org/x/tools/cmd/goimports@v0.51.0

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "these files need gofmt:"
	echo "$unformatted"
	exit 1
fi
misgrouped=$(go run "$GOIMPORTS" -local github.com/hoist-dev/hoist -l .)
if [ -n "$misgrouped" ]; then
	echo "these files need goimports -local github.com/hoist-dev/hoist -w:"
	echo "$misgrouped"
	exit 1
fi
go vet ./...
go run "$STATICCHECK" ./...
