package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mnemo-kv/mnemo/client"
)

type pflagFlag = pflag.Flag

func replaceAll(s, old, new string) string { return strings.ReplaceAll(s, old, new) }

// clientFlags are the flags every client command takes.
type clientFlags struct {
	addr    string
	timeout time.Duration
	json    bool
	// tlsCA, tlsCert and tlsKey are PEM files: with --tls-ca the client
	// speaks TLS, presenting the certificate when given.
	tlsCA, tlsCert, tlsKey string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	def := os.Getenv("MNEMO_ADDR")
	if def == "" {
		def = "127.0.0.1:7000"
	}
	cmd.Flags().StringVar(&f.addr, "addr", def, "RPC address of any node (env MNEMO_ADDR)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
	cmd.Flags().StringVar(&f.tlsCA, "tls-ca", os.Getenv("MNEMO_TLS_CA"), "CA bundle (PEM) of the cluster: speak TLS to nodes with security on (env MNEMO_TLS_CA)")
	cmd.Flags().StringVar(&f.tlsCert, "tls-cert", os.Getenv("MNEMO_TLS_CERT"), "client certificate (PEM; mnemo certs client NAME) (env MNEMO_TLS_CERT)")
	cmd.Flags().StringVar(&f.tlsKey, "tls-key", os.Getenv("MNEMO_TLS_KEY"), "key of --tls-cert (PEM) (env MNEMO_TLS_KEY)")
}

// newClient makes the client the flags describe, without a context.
func (f *clientFlags) newClient() (*client.Client, error) {
	cfg := client.Config{Addrs: []string{f.addr}}
	if f.tlsCA != "" || f.tlsCert != "" || f.tlsKey != "" {
		t, err := client.LoadTLS(f.tlsCA, f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, err
		}
		cfg.TLS = t
	}
	return client.NewWithConfig(cfg)
}

func (f *clientFlags) client() (*client.Client, context.Context, context.CancelFunc, error) {
	c, err := f.newClient()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	return c, ctx, func() { cancel(); c.Close() }, nil
}

func quorumOpts(r, w, n int, strict bool) []client.Option {
	var opts []client.Option
	if r > 0 {
		opts = append(opts, client.R(r))
	}
	if w > 0 {
		opts = append(opts, client.W(w))
	}
	if n > 0 {
		opts = append(opts, client.N(n))
	}
	if strict {
		opts = append(opts, client.Strict())
	}
	return opts
}

func modeOpt(mode string) (client.Option, error) {
	switch mode {
	case "":
		return nil, nil
	case "lww":
		return client.LWW(), nil
	case "siblings":
		return client.Siblings(), nil
	}
	return nil, fmt.Errorf("--mode %q is not siblings or lww", mode)
}

func putCmd() *cobra.Command {
	var cf clientFlags
	var w, n int
	var strict, overwrite bool
	var ctxStr, mode string
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Write a value (VALUE - reads it from stdin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := []byte(args[1])
			if args[1] == "-" {
				var err error
				if value, err = io.ReadAll(os.Stdin); err != nil {
					return fmt.Errorf("reading stdin: %w", err)
				}
			}
			opts := quorumOpts(0, w, n, strict)
			if ctxStr != "" {
				c, err := client.ParseContext(ctxStr)
				if err != nil {
					return err
				}
				opts = append(opts, client.WithContext(c))
			}
			if overwrite {
				opts = append(opts, client.Overwrite())
			}
			if m, err := modeOpt(mode); err != nil {
				return err
			} else if m != nil {
				opts = append(opts, m)
			}
			c, ctx, done, err := cf.client()
			if err != nil {
				return err
			}
			defer done()
			newCtx, err := c.Put(ctx, []byte(args[0]), value, opts...)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(map[string]any{"key": args[0], "context": newCtx.String()})
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().IntVar(&w, "w", 0, "write quorum (default: the node's)")
	cmd.Flags().IntVar(&n, "n", 0, "replicas (default: the node's)")
	cmd.Flags().BoolVar(&strict, "strict", false, "count only home replicas (no sloppy quorum)")
	cmd.Flags().StringVar(&ctxStr, "context", "", "context from a get --json: supersede exactly what was read")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "supersede every version the versioning replica holds")
	cmd.Flags().StringVar(&mode, "mode", "", "conflict mode for this write: siblings or lww (default: the cluster's)")
	return cmd
}

type jsonSibling struct {
	Value     string    `json:"value"`
	Timestamp time.Time `json:"timestamp"`
	Actor     string    `json:"actor"`
	Counter   uint64    `json:"counter"`
	Tombstone bool      `json:"tombstone,omitempty"`
}

func getCmd() *cobra.Command {
	var cf clientFlags
	var r, n int
	var strict, local, tombstones bool
	var mode string
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Read a key: one line per value; exit 1 when not found",
		Long: `Read a key and print its value, one line per sibling when there are
several. --json adds the context and metadata. --local prints only the
contacted node's stored copy (no quorum, no repair): how an operator checks
one replica.

Exit status: 0 found, 1 not found (a deleted key is not found), 2 error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := quorumOpts(r, 0, n, strict)
			if local {
				opts = append(opts, client.Local())
			}
			if tombstones {
				opts = append(opts, client.IncludeTombstones())
			}
			if m, err := modeOpt(mode); err != nil {
				return err
			} else if m != nil {
				opts = append(opts, m)
			}
			c, ctx, done, err := cf.client()
			if err != nil {
				return err
			}
			defer done()
			res, err := c.Get(ctx, []byte(args[0]), opts...)
			found := err == nil
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				return err
			}
			if cf.json {
				out := map[string]any{"key": args[0], "found": found, "replies": res.Replies, "context": res.Context.String()}
				vals := []string{}
				sibs := []jsonSibling{}
				for _, s := range res.Siblings {
					if !s.Tombstone {
						vals = append(vals, string(s.Value))
					}
					sibs = append(sibs, jsonSibling{string(s.Value), s.Timestamp.UTC(), s.Actor, s.Counter, s.Tombstone})
				}
				out["values"], out["siblings"] = vals, sibs
				if err := printJSON(out); err != nil {
					return err
				}
			} else {
				for _, v := range res.Values {
					os.Stdout.Write(v)
					os.Stdout.Write([]byte{'\n'})
				}
			}
			if !found {
				return &exitCode{1, client.ErrNotFound}
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().IntVar(&r, "r", 0, "read quorum (default: the node's)")
	cmd.Flags().IntVar(&n, "n", 0, "replicas (default: the node's)")
	cmd.Flags().BoolVar(&strict, "strict", false, "count only home replicas (no sloppy quorum)")
	cmd.Flags().BoolVar(&local, "local", false, "only the contacted node's stored copy: no quorum, no repair")
	cmd.Flags().BoolVar(&tombstones, "tombstones", false, "list delete markers too (with --json)")
	cmd.Flags().StringVar(&mode, "mode", "", "conflict mode for this read: siblings or lww (default: the cluster's)")
	return cmd
}

func delCmd() *cobra.Command {
	var cf clientFlags
	var w, n int
	var strict bool
	var ctxStr string
	cmd := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete a key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := quorumOpts(0, w, n, strict)
			if ctxStr != "" {
				c, err := client.ParseContext(ctxStr)
				if err != nil {
					return err
				}
				opts = append(opts, client.WithContext(c))
			}
			c, ctx, done, err := cf.client()
			if err != nil {
				return err
			}
			defer done()
			return c.Delete(ctx, []byte(args[0]), opts...)
		},
	}
	cf.register(cmd)
	cmd.Flags().IntVar(&w, "w", 0, "write quorum (default: the node's)")
	cmd.Flags().IntVar(&n, "n", 0, "replicas (default: the node's)")
	cmd.Flags().BoolVar(&strict, "strict", false, "count only home replicas (no sloppy quorum)")
	cmd.Flags().StringVar(&ctxStr, "context", "", "context from a get --json: delete exactly what was read")
	return cmd
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
