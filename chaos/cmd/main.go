// Command cmd runs the chaos harness without the mnemo binary around it:
//
//	go run ./chaos/cmd --duration 2m --seed 7
//
// It takes the flags of `mnemo chaos` plus --binary; without --binary the
// nodes run $MNEMO_BIN, or a mnemo built for the run. Exit status: 0 the
// check passed, 1 it found a violation, 2 the harness could not run.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/mnemo-kv/mnemo/chaos"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
)

func main() { os.Exit(run()) }

func run() int {
	cfg := chaos.DefaultConfig()
	fs := pflag.NewFlagSet("chaos", pflag.ContinueOnError)
	fs.StringVar(&cfg.Binary, "binary", "", "mnemo executable for the nodes (default $MNEMO_BIN, else built)")
	cfg.BindFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.Binary == "" {
		tmp, err := os.MkdirTemp("", "mnemo-chaos-bin-")
		if err != nil {
			return fail(err)
		}
		defer os.RemoveAll(tmp)
		if cfg.Binary, err = localcluster.FindBinary(tmp); err != nil {
			return fail(err)
		}
	}
	cfg.Out = os.Stdout
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "chaos:", err)
	return 2
}
