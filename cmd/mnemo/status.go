package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/node"
)

func statusCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show members, liveness, ring ownership and keys per node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := cf.client()
			if err != nil {
				return err
			}
			defer done()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(st)
			}
			printStatus(st)
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

func printStatus(st *client.Status) {
	fmt.Printf("node %s: %d partitions, N=%d R=%d W=%d, conflicts %s, ring %016x\n\n",
		st.Node, st.Partitions, st.N, st.R, st.W, st.Conflicts, st.RingDigest)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tRING\tLIVENESS\tOWNED\tPRIMARY\tKEYS\tTOMBSTONES\tRPC")
	for _, m := range st.Members {
		keys, tombs := "?", "?"
		if m.Info != nil {
			keys, tombs = fmt.Sprint(m.Info.Keys), fmt.Sprint(m.Info.Tombstones)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", m.ID, m.Ring, m.Liveness, m.Owned, m.Primary, keys, tombs, m.RPCAddr)
	}
	tw.Flush()
	// Subsystem figures, one line per node, only the non-zero ones.
	for _, m := range st.Members {
		if m.Info == nil {
			continue
		}
		var parts []string
		for _, c := range m.Info.Counters() {
			if c.Value != 0 {
				parts = append(parts, fmt.Sprintf("%s=%g", c.Name, c.Value))
			}
		}
		sort.Strings(parts)
		if len(parts) > 0 {
			fmt.Printf("\n%s: %s", m.ID, strings.Join(parts, " "))
		}
	}
	fmt.Println()
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, args []string) { fmt.Println("mnemo", node.Version) },
	}
}
