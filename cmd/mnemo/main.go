// Command mnemo is the one binary of mnemo: it runs a node (`mnemo node`)
// and is the command-line client (put, get, del, status) and the driver of
// the demo, benchmarks and chaos runs.
//
// Exit codes for scripts: 0 success; 1 not found (get); 2 any other error,
// with the reason on stderr.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/client"
)

// exitCode carries a specific exit status out of a command.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string { return e.err.Error() }
func (e *exitCode) Unwrap() error { return e.err }

func main() {
	root := &cobra.Command{
		Use:           "mnemo",
		Short:         "mnemo: a Dynamo-style replicated key-value store",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(nodeCmd(), putCmd(), getCmd(), delCmd(), statusCmd(), versionCmd())
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	err := root.Execute()
	if err == nil {
		return
	}
	code := 2
	var ec *exitCode
	if errors.As(err, &ec) {
		code = ec.code
		err = ec.err
	}
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		fmt.Fprintln(os.Stderr, err) // as it is: the client's errors say "mnemo: "
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "mnemo: not found")
	}
	os.Exit(code)
}

// extraCommands are added by other files of this package (demo, bench,
// chaos), so each stays in its own file.
var extraCommands []func() *cobra.Command
