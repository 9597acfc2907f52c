package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/internal/security"
)

func init() { extraCommands = append(extraCommands, certsCmd) }

// certsCmd writes a cluster CA and node and client certificates, with the
// URI SANs peers check (mnemo://node/<id>, mnemo://client/<name>).
func certsCmd() *cobra.Command {
	var dir string
	var validity time.Duration
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Write a cluster CA and node and client certificates (ECDSA P-256)",
		Long: `Write the TLS files of a cluster into --dir:

  mnemo certs init --nodes node-1,node-2,node-3 --clients ops
      ca.crt, ca.key, node-1.crt/.key, ..., client-ops.crt/.key
  mnemo certs ca                      a new ca.crt and ca.key
  mnemo certs node ID [--hosts h,...] ID.crt/.key signed by ca.crt/ca.key
  mnemo certs client NAME             client-NAME.crt/.key

A node runs with --tls-cert DIR/ID.crt --tls-key DIR/ID.key --tls-ca
DIR/ca.crt; a client with --tls-ca DIR/ca.crt and a client certificate.
Keys are written readable by their owner only; keep ca.key off the nodes.
Files are replaced by a rename, so a running node reloads them whole.`,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "certs", "directory of the CA and the certificates")
	cmd.PersistentFlags().DurationVar(&validity, "validity", 365*24*time.Hour, "how long certificates are valid (the CA: ten times that)")

	var hosts []string
	issue := func(ca *security.CA, id security.Identity, file string) error {
		c, err := ca.Issue(security.CertRequest{Identity: id, Hosts: hosts, NotAfter: time.Now().Add(validity)})
		if err != nil {
			return err
		}
		if err := c.Write(dir, file); err != nil {
			return err
		}
		fmt.Printf("wrote %s.crt and %s.key (%s)\n", filepath.Join(dir, file), filepath.Join(dir, file), id)
		return nil
	}
	newCA := func() (*security.CA, error) {
		if _, err := os.Stat(filepath.Join(dir, "ca.key")); err == nil {
			return nil, fmt.Errorf("%s already exists: remove it to make a new CA (nodes trust the CAs of their --tls-ca bundle)", filepath.Join(dir, "ca.key"))
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		ca, err := security.NewCA("mnemo cluster CA", 10*validity)
		if err != nil {
			return nil, err
		}
		if err := ca.WriteCA(dir); err != nil {
			return nil, err
		}
		fmt.Printf("wrote %s and %s\n", filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
		return ca, nil
	}
	loadCA := func() (*security.CA, error) {
		return security.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	}

	var nodes, clients []string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "A new CA, and a certificate for each --nodes and --clients name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(nodes) == 0 {
				return errors.New("--nodes: name at least one node id")
			}
			ca, err := newCA()
			if err != nil {
				return err
			}
			for _, id := range nodes {
				if err := issue(ca, security.Identity{Kind: security.NodeIdentity, Name: id}, id); err != nil {
					return err
				}
			}
			for _, name := range clients {
				if err := issue(ca, security.Identity{Kind: security.ClientIdentity, Name: name}, "client-"+name); err != nil {
					return err
				}
			}
			return nil
		},
	}
	initCmd.Flags().StringSliceVar(&nodes, "nodes", nil, "node ids (comma-separated), as their --id")
	initCmd.Flags().StringSliceVar(&clients, "clients", nil, "client names (comma-separated)")
	initCmd.Flags().StringSliceVar(&hosts, "hosts", nil, "DNS names or IPs added to every certificate, for clients that check host names")

	caCmd := &cobra.Command{
		Use: "ca", Short: "A new CA (ca.crt, ca.key)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { _, err := newCA(); return err },
	}
	nodeCmd := &cobra.Command{
		Use: "node ID", Short: "A node's certificate, signed by the CA in --dir", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ca, err := loadCA()
			if err != nil {
				return err
			}
			return issue(ca, security.Identity{Kind: security.NodeIdentity, Name: args[0]}, args[0])
		},
	}
	nodeCmd.Flags().StringSliceVar(&hosts, "hosts", nil, "DNS names or IPs added to the certificate")
	clientCmd := &cobra.Command{
		Use: "client NAME", Short: "A client's certificate, signed by the CA in --dir", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ca, err := loadCA()
			if err != nil {
				return err
			}
			name := args[0]
			if strings.ContainsAny(name, "/ ") {
				return fmt.Errorf("client name %q must not hold '/' or spaces", name)
			}
			return issue(ca, security.Identity{Kind: security.ClientIdentity, Name: name}, "client-"+name)
		},
	}
	cmd.AddCommand(initCmd, caCmd, nodeCmd, clientCmd)
	return cmd
}
