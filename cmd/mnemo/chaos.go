package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/chaos"
)

func init() { extraCommands = append(extraCommands, chaosCmd) }

func chaosCmd() *cobra.Command {
	cfg := chaos.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Kill, pause, wipe and partition a local cluster under load, then check nothing acknowledged was lost",
		Long: `Start a local cluster of real nodes (as root each in its own network
namespace), drive the set, register and delete workloads from many clients
while faults drawn from a seed kill -9, restart, pause (SIGSTOP), wipe and
partition nodes; then heal, wait for the replicas to converge, read every
key at R=N and on each home replica, and check that no acknowledged add or
write was lost, no delete came back and no register went stale.

The seed is printed first; --seed with the same fault settings replays the
schedule. The summary is printed, and report.json, report.svg (throughput
and errors over time, faults as bands), history.jsonl and the node logs are
left in --dir.

Exit status: 0 the check passed; 1 it found a violation (or the replicas
did not converge); 2 the harness could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Binary = self
			cfg.Out = os.Stdout
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			rep, err := chaos.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if rep.Failed() {
				return &exitCode{code: 1, err: errors.New("chaos: the check failed (see above and " + rep.Files["report"] + ")")}
			}
			return nil
		},
	}
	cfg.BindFlags(cmd.Flags())
	return cmd
}
