#!/usr/bin/env bash
# The project's linters: gofmt, go vet and staticcheck. staticcheck comes
# through the Go module proxy at a pinned version (go run fetches and caches
# it; nothing is installed system-wide).
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "these files need gofmt:"
	echo "$unformatted"
	exit 1
fi
go vet ./...
go run "$STATICCHECK" ./...
