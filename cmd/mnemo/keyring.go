package main

// mnemo keyring: gossip keys of a running cluster, Consul's `keyring`
// commands with per-member counts, and the two helpers an operator needs
// to make and name keys. Keys are read from files (or stdin), never from
// arguments, and printed only by `generate`; everything else shows
// fingerprints.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/gossip"
)

func init() { extraCommands = append(extraCommands, keyringCmd) }

func keyringCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keyring",
		Short: "Gossip encryption keys: generate, fingerprint, and list/install/use/remove on a running cluster",
		Long: `Gossip encryption keys (AES-256-GCM, 32 bytes, base64 in files).

Rotation without downtime, each step checked on every member ([n/n]):
  mnemo keyring generate > new.key
  mnemo keyring install --key-file new.key   # every member can decrypt with it
  mnemo keyring use --key-file new.key       # every member encrypts with it
  mnemo keyring remove OLD-FINGERPRINT       # the old key is gone
mnemo never writes a key file: put the new key in every node's
--gossip-key-file (first line once it is in use) so that a restart reads it.`,
	}
	cmd.AddCommand(keyringGenerateCmd(), keyringFingerprintCmd(), keyringListCmd(),
		keyringChangeCmd("install"), keyringChangeCmd("use"), keyringChangeCmd("remove"))
	return cmd
}

func keyringGenerateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Print a new random gossip key (base64) on stdout, its fingerprint on stderr",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key := make([]byte, gossip.KeySize)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			fmt.Println(base64.StdEncoding.EncodeToString(key))
			fmt.Fprintln(os.Stderr, "fingerprint", gossip.Fingerprint(key))
			return nil
		},
	}
}

// readKeys reads a key file ("-" or "": stdin).
func readKeys(path string) ([][]byte, error) {
	var b []byte
	var err error
	if path == "" || path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		path = "stdin"
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	keys, err := gossip.ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

func keyringFingerprintCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "fingerprint",
		Short: "Print the fingerprint of each key of a key file (default stdin), the primary first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := readKeys(file)
			if err != nil {
				return err
			}
			for _, k := range keys {
				fmt.Println(gossip.Fingerprint(k))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "key-file", "-", "key file, one base64 key per line ('-': stdin)")
	return cmd
}

func keyringListCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every member's gossip keys (fingerprints) and how many members hold each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := cf.client()
			if err != nil {
				return err
			}
			defer done()
			reply, err := c.KeyringList(ctx, client.Node(cf.addr))
			if err != nil {
				return err
			}
			return printKeyring(cmd.OutOrStdout(), cf.json, "list", "", reply)
		},
	}
	cf.register(cmd)
	return cmd
}

func keyringChangeCmd(op string) *cobra.Command {
	var cf clientFlags
	var file string
	use := op + " FINGERPRINT | --key-file FILE"
	short := map[string]string{
		"install": "Install a key (from --key-file) on every member, for decryption only",
		"use":     "Make a key the primary (the one gossip encrypts with) on every member",
		"remove":  "Remove a key (not the primary) from every member",
	}[op]
	if op == "install" {
		use = "install --key-file FILE"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var key []byte
			fp := ""
			switch {
			case len(args) == 1 && op != "install" && !cmd.Flags().Changed("key-file"):
				fp = args[0]
			case len(args) == 0 && cmd.Flags().Changed("key-file"):
				keys, err := readKeys(file)
				if err != nil {
					return err
				}
				if len(keys) != 1 {
					return fmt.Errorf("%s holds %d keys; give a file with the one key to %s", file, len(keys), op)
				}
				key, fp = keys[0], gossip.Fingerprint(keys[0])
			case op == "install":
				return errors.New("install needs --key-file FILE (a key is never given as an argument)")
			default:
				return fmt.Errorf("%s needs a key fingerprint or --key-file FILE", op)
			}
			c, ctx, done, err := cf.client()
			if err != nil {
				return err
			}
			defer done()
			var reply *client.KeyringReply
			switch op {
			case "install":
				reply, err = c.KeyringInstall(ctx, key, client.Node(cf.addr))
			case "use":
				reply, err = c.KeyringUse(ctx, fp, client.Node(cf.addr))
			case "remove":
				reply, err = c.KeyringRemove(ctx, fp, client.Node(cf.addr))
			}
			if err != nil {
				return err
			}
			return printKeyring(cmd.OutOrStdout(), cf.json, op, fp, reply)
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&file, "key-file", "", "file holding the one base64 key ('-': stdin)")
	return cmd
}

// printKeyring prints a keyring reply: the operation's count and each
// member's result, then each key with the members that hold it and those
// that encrypt with it, Consul's [n/n]. It returns an error (exit 2) when
// any member failed.
func printKeyring(w io.Writer, asJSON bool, op, fp string, r *client.KeyringReply) error {
	failed := 0
	for _, n := range r.Nodes {
		if n.Error != "" {
			failed++
		}
	}
	total := len(r.Nodes)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		if op != "list" {
			fmt.Fprintf(w, "%s %s: [%d/%d] members\n", op, fp, total-failed, total)
		}
		for _, n := range r.Nodes {
			state := "plaintext"
			if n.Encrypting {
				state = "encrypting"
			}
			if n.Error != "" {
				fmt.Fprintf(w, "  %-12s error: %s\n", n.Node, n.Error)
				continue
			}
			fmt.Fprintf(w, "  %-12s %-12s %-10s primary %s\n", n.Node, n.Mode, state, n.Primary)
		}
		var keys []string
		held, primary := map[string]int{}, map[string]int{}
		for _, n := range r.Nodes {
			for _, k := range n.Keys {
				if held[k] == 0 {
					keys = append(keys, k)
				}
				held[k]++
			}
			if n.Primary != "" {
				primary[n.Primary]++
			}
		}
		slices.Sort(keys)
		if len(keys) > 0 {
			fmt.Fprintln(w, "keys:")
		}
		for _, k := range keys {
			fmt.Fprintf(w, "  %s  [%d/%d] members  primary on [%d/%d]\n", k, held[k], total, primary[k], total)
		}
	}
	if failed > 0 {
		var names []string
		for _, n := range r.Nodes {
			if n.Error != "" {
				names = append(names, n.Node)
			}
		}
		return fmt.Errorf("%s failed on %d of %d members: %s", op, failed, total, strings.Join(names, ", "))
	}
	return nil
}
