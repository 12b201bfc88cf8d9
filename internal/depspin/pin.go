// Package depspin keeps modules that packages under construction will use
// in go.mod, so concurrent work does not race on go.mod. Delete it once
// every module here is imported for real.
package depspin

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/coder/websocket"
)
