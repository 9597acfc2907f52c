package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/internal/acl"
)

func init() { extraCommands = append(extraCommands, usersCmd) }

// usersCmd groups the helpers for the RESP users file (--resp-users).
func usersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Hash passwords for and check the Redis-protocol users file (--resp-users)",
	}
	cmd.AddCommand(usersHashCmd(), usersCheckCmd())
	return cmd
}

// maxPasswordInput bounds, in bytes, what `users hash` reads.
const maxPasswordInput = 4096

func usersHashCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "hash [--password-file FILE]",
		Short: "Print the argon2id hash of a password for a users file's password-hash",
		Long: `Reads one password (its first line) from --password-file, or from stdin (with
no echo on a terminal), and prints its argon2id hash for the password-hash
field of a users file. The password is never an argument, so it stays out of
shell history and the process list.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var pw []byte
			var err error
			if file != "" {
				pw, err = readPasswordFile(file)
			} else {
				pw, err = readPasswordStdin(cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			defer clear(pw)
			h, err := acl.HashPassword(pw)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), h)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "password-file", "", "read the password from this file's first line (default: stdin)")
	return cmd
}

func usersCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Check a users file as a node would load it, and list its users",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			us, err := acl.Load(args[0])
			if err != nil {
				return err
			}
			for _, name := range us.Names() {
				u := us.Lookup(name)
				if u == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\tdisabled\n", name)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", name, u.Perms())
			}
			return nil
		},
	}
}

func readPasswordFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return firstLine(f)
}

// readPasswordStdin reads a line from stdin, turning the terminal's echo
// off while it does (where the platform allows).
func readPasswordStdin(prompt io.Writer) ([]byte, error) {
	if isatty.IsTerminal(os.Stdin.Fd()) {
		fmt.Fprint(prompt, "password: ")
		restore := noEcho(os.Stdin.Fd())
		defer func() {
			restore()
			fmt.Fprintln(prompt)
		}()
	}
	return firstLine(os.Stdin)
}

// firstLine returns r's first line without its line ending.
func firstLine(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxPasswordInput+2), maxPasswordInput+2)
	line, err := br.ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	line = bytes.TrimRight(line, "\r\n")
	switch {
	case len(line) == 0:
		return nil, errors.New("no password given (an empty first line)")
	case len(line) > maxPasswordInput:
		return nil, fmt.Errorf("password over %d bytes", maxPasswordInput)
	}
	return line, nil
}
