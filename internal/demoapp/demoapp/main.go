// Command demoapp runs the demo backend on $PORT. Tests build it statically
// because it compiles in seconds, unlike the full hoist binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hoist-dev/hoist/internal/demoapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demoapp.Run(ctx, demoapp.ConfigFromEnv()); err != nil {
		fmt.Fprintln(os.Stderr, "demoapp:", err)
		os.Exit(1)
	}
}
