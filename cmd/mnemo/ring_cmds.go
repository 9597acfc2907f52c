package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/client"
)

func init() { extraCommands = append(extraCommands, leaveCmd, removeCmd, eventsCmd) }

func leaveCmd() *cobra.Command {
	var cf clientFlags
	var wait bool
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Decommission the node at --addr: hand off its partitions, leave the ring, exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := cf.client()
			if err != nil {
				return err
			}
			defer done()
			if err := c.Leave(ctx, cf.addr); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s is leaving: handing its partitions to their new owners\n", cf.addr)
			if !wait {
				return nil
			}
			// The node exits when it is done; until then report progress.
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				st, err := c.Status(sctx, client.Node(cf.addr))
				cancel()
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s has left the ring and stopped\n", cf.addr)
					return nil
				}
				for _, m := range st.Members {
					if m.ID == st.Node && m.Info != nil {
						fmt.Fprintf(os.Stderr, "  %s: %s, %g keys held\n", m.ID, m.Ring, float64(m.Info.Keys))
					}
				}
				<-tick.C
			}
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the node has left and stopped")
	cf.timeout = time.Hour
	return cmd
}

func removeCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "remove NODE-ID",
		Short: "Take a dead node out of the ring; the survivors re-replicate its partitions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := cf.client()
			if err != nil {
				return err
			}
			defer done()
			return c.Remove(ctx, args[0], client.Node(cf.addr))
		},
	}
	cf.register(cmd)
	return cmd
}

func eventsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Stream the partition-ownership events of the node at --addr (JSON lines)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.newClient()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
			defer cancel()
			if cf.timeout > 0 {
				var c2 context.CancelFunc
				ctx, c2 = context.WithTimeout(ctx, cf.timeout)
				defer c2()
			}
			enc := json.NewEncoder(os.Stdout)
			for ev := range c.WatchOwnership(ctx, cf.addr) {
				enc.Encode(ev)
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().Lookup("timeout").DefValue = "0s"
	cf.timeout = 0
	return cmd
}
