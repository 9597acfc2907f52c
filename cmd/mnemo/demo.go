package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/poll"
)

func init() { extraCommands = append(extraCommands, demoCmd) }

func demoCmd() *cobra.Command {
	var dir string
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start 3 local nodes and play the rejoin story",
		Long: `Start three local nodes and play the story mnemo exists for:

  T0  write keys 1-100; every node holds 100
  T1  node-3 is killed (SIGKILL); the others see it dead
  T3  keys 101-150 are written, some of 1-100 updated and a few deleted
  T4  node-3 restarts on its old data directory and is seen alive
  T5  key 125 is read through node-3 and found; node-3's own copy of every
      key then matches the other nodes, and the timeline says which
      mechanism delivered how many keys and how long it took

It exits non-zero if any step does not hold, and stops its nodes however it
ends.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(dir, keep)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".demo", "directory for the nodes' data and logs (emptied first)")
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the data directory behind")
	return cmd
}

// story prints the demo's timeline.
type story struct {
	c     *localcluster.Cluster
	cl    *client.Client
	start time.Time
}

func (s *story) counts() string {
	var parts []string
	for _, p := range s.c.Nodes {
		mark, keys := "✕", "  -"
		if p.Running() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := s.cl.Status(ctx, client.Node(p.RPC))
			cancel()
			if err == nil {
				mark = "●"
				for _, m := range st.Members {
					if m.ID == p.ID && m.Info != nil {
						keys = fmt.Sprintf("%3d", m.Info.Keys)
					}
				}
			} else {
				mark = "?"
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", mark, p.ID, keys))
	}
	return strings.Join(parts, "   ")
}

func (s *story) log(event string) {
	fmt.Printf("%7.2fs  %-58s %s\n", time.Since(s.start).Seconds(), event, s.counts())
}

func (s *story) note(format string, args ...any) {
	fmt.Printf("%7.2fs  %s\n", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

func demoKey(i int) []byte { return fmt.Appendf(nil, "key-%d", i) }

func runDemo(dir string, keep bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, _ = filepath.Abs(dir)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c, err := localcluster.New(localcluster.Options{Binary: self, Dir: dir, Nodes: 3, HTTP: true})
	if err != nil {
		return err
	}
	// Stop the nodes however the demo ends: error, success or Ctrl-C.
	defer func() {
		c.StopAll()
		c.Close()
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	fmt.Println("mnemo demo: 3 nodes on loopback, N=3 R=2 W=2; logs in", dir)
	fmt.Println()
	s := &story{c: c, start: time.Now()}
	if err := c.StartAll(ctx); err != nil {
		return err
	}
	if s.cl, err = c.Client(0, 1); err != nil {
		return err
	}
	defer s.cl.Close()
	s.log("3 nodes up, each sees the others alive")
	for i, p := range c.Nodes {
		if p.HTTP != "" && i == 0 {
			s.note("ring page: http://%s/", p.HTTP)
		}
	}

	// T0
	for i := 1; i <= 100; i++ {
		if _, err := s.cl.Put(ctx, demoKey(i), fmt.Appendf(nil, "v1-of-%d", i)); err != nil {
			return fmt.Errorf("T0: put key-%d: %w", i, err)
		}
	}
	if err := s.waitKeys(ctx, []int{0, 1, 2}, 100); err != nil {
		return fmt.Errorf("T0: %w", err)
	}
	s.log("T0 wrote keys 1-100")

	// T1
	if err := c.Kill(2); err != nil {
		return err
	}
	s.log("T1 node-3 killed (SIGKILL)")
	if err := c.WaitConverged(ctx, 0, 1); err != nil {
		return fmt.Errorf("T1: %w", err)
	}
	s.log("   node-1 and node-2 see node-3 dead")

	// T3
	for i := 101; i <= 150; i++ {
		if _, err := s.cl.Put(ctx, demoKey(i), fmt.Appendf(nil, "v1-of-%d", i)); err != nil {
			return fmt.Errorf("T3: put key-%d: %w", i, err)
		}
	}
	updated, deleted := []int{}, []int{}
	for i := 1; i <= 100; i += 9 {
		res, err := s.cl.Get(ctx, demoKey(i))
		if err != nil {
			return fmt.Errorf("T3: get key-%d: %w", i, err)
		}
		if _, err := s.cl.Put(ctx, demoKey(i), fmt.Appendf(nil, "v2-of-%d", i), client.WithContext(res.Context)); err != nil {
			return fmt.Errorf("T3: update key-%d: %w", i, err)
		}
		updated = append(updated, i)
	}
	for i := 5; i <= 100; i += 20 {
		if err := s.cl.Delete(ctx, demoKey(i)); err != nil {
			return fmt.Errorf("T3: delete key-%d: %w", i, err)
		}
		deleted = append(deleted, i)
	}
	s.log(fmt.Sprintf("T3 wrote 101-150, updated %d keys, deleted %d", len(updated), len(deleted)))
	s.note("   updated %v", updated)
	s.note("   deleted %v", deleted)
	before := s.mechanisms(ctx)

	// T4
	if err := c.Start(2); err != nil {
		return err
	}
	if err := c.WaitConverged(ctx, 0, 1, 2); err != nil {
		return fmt.Errorf("T4: %w", err)
	}
	rejoined := time.Now()
	s.log("T4 node-3 restarted on its old data, seen alive")

	// T5
	n3, err := c.Client(2)
	if err != nil {
		return err
	}
	defer n3.Close()
	res, err := n3.Get(ctx, demoKey(125), client.Node(c.Nodes[2].RPC))
	if err != nil {
		return fmt.Errorf("T5: read key-125 through node-3: %w", err)
	}
	if string(res.Value()) != "v1-of-125" {
		return fmt.Errorf("T5: key-125 through node-3 is %q, want v1-of-125", res.Value())
	}
	s.log(fmt.Sprintf("T5 read key-125 through node-3: %q", res.Value()))

	if err := poll.Until(ctx, 30*time.Second, 50*time.Millisecond, "T5: node-3 caught up after its rejoin", func() (bool, string) {
		return compareReplicas(ctx, n3, c, 150)
	}); err != nil {
		return err
	}
	took := time.Since(rejoined)
	s.log(fmt.Sprintf("   node-3's own copy of all 150 keys matches (%.2fs after rejoin)", took.Seconds()))
	after := s.mechanisms(ctx)
	fmt.Println()
	fmt.Printf("How node-3 caught up, %.2fs from rejoin to every key matching:\n", took.Seconds())
	fmt.Printf("  hinted handoff   %4.0f objects replayed to node-3 by node-1 and node-2\n", after.hints-before.hints)
	fmt.Printf("  read repair      %4.0f replicas repaired by quorum reads\n", after.repairs-before.repairs)
	fmt.Printf("  anti-entropy     %4.0f keys repaired by Merkle exchanges\n", after.aae-before.aae)
	fmt.Println()
	fmt.Println("Every step held. Stopping the nodes.")
	return nil
}

// waitKeys waits until the given nodes each hold want live keys.
func (s *story) waitKeys(ctx context.Context, nodes []int, want int64) error {
	return poll.Until(ctx, 20*time.Second, 50*time.Millisecond, fmt.Sprintf("nodes %v holding %d keys", nodes, want), func() (bool, string) {
		for _, i := range nodes {
			st, err := s.cl.Status(ctx, client.Node(s.c.Nodes[i].RPC))
			if err != nil {
				return false, err.Error()
			}
			for _, m := range st.Members {
				if m.ID != s.c.Nodes[i].ID {
					continue
				}
				if m.Info == nil {
					return false, m.ID + " sent no report"
				}
				if m.Info.Keys != want {
					return false, fmt.Sprintf("%s holds %d keys", m.ID, m.Info.Keys)
				}
			}
		}
		return true, ""
	})
}

type mechanisms struct{ hints, repairs, aae float64 }

// mechanisms sums the cluster's counters of the three repair paths.
func (s *story) mechanisms(ctx context.Context) mechanisms {
	var m mechanisms
	for _, p := range s.c.Nodes {
		if !p.Running() {
			continue
		}
		st, err := s.cl.Status(ctx, client.Node(p.RPC))
		if err != nil {
			continue
		}
		for _, ms := range st.Members {
			if ms.ID != p.ID || ms.Info == nil {
				continue
			}
			m.hints += float64(ms.Info.Handoff.Replayed)
			m.repairs += float64(ms.Info.ReadRepairs)
			m.aae += float64(ms.Info.AntiEntropy.KeysReceived)
		}
	}
	return m
}

// compareReplicas checks node-3's stored copy of every key against node-1's.
func compareReplicas(ctx context.Context, cl *client.Client, c *localcluster.Cluster, keys int) (bool, string) {
	for i := 1; i <= keys; i++ {
		want, errW := cl.Get(ctx, demoKey(i), client.Local(), client.Node(c.Nodes[0].RPC))
		got, errG := cl.Get(ctx, demoKey(i), client.Local(), client.Node(c.Nodes[2].RPC))
		if (errW == nil) != (errG == nil) || !errors.Is(errW, errG) && errW != nil && errG != nil {
			return false, fmt.Sprintf("key-%d: node-1 %v, node-3 %v", i, errW, errG)
		}
		if errW != nil && !errors.Is(errW, client.ErrNotFound) {
			return false, fmt.Sprintf("key-%d: %v", i, errW)
		}
		if !slices.EqualFunc(want.Values, got.Values, func(a, b []byte) bool { return string(a) == string(b) }) {
			return false, fmt.Sprintf("key-%d: node-1 %q, node-3 %q", i, want.Values, got.Values)
		}
	}
	return true, ""
}
