package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/config"
	"github.com/mnemo-kv/mnemo/internal/gctune"
	"github.com/mnemo-kv/mnemo/node"
)

func nodeCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a node",
		Long: `Run a mnemo node until SIGINT or SIGTERM. SIGHUP reloads the TLS files.

Every setting is a flag and may also be set in a TOML config file (--config)
as "name = value" pairs; flags win over the file. A bad value stops start-up
with one line per bad setting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			values := map[string]string{}
			if configFile != "" {
				fileValues, err := config.ReadFile(configFile)
				if err != nil {
					return fmt.Errorf("bad configuration:\n%w", err)
				}
				values = fileValues
			}
			cmd.Flags().Visit(func(f *pflagFlag) {
				if f.Name != "config" {
					values[f.Name] = f.Value.String()
				}
			})
			cfg, err := config.Parse(values)
			if err != nil {
				return fmt.Errorf("bad configuration:\n%w", indent(err))
			}
			log := newLogger(cfg)
			if os.Getenv("GOGC") == "" {
				defer gctune.Start(uint64(cfg.GCHeadroom)).Stop()
			}
			n, err := node.New(cfg, log)
			if err != nil {
				return err
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			// SIGHUP reloads the TLS files (a bad one is logged and the
			// old one kept); it never stops the node.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
		wait:
			select {
			case <-hup:
				log.Info().Msg("SIGHUP: reloading TLS files")
				_ = n.ReloadTLS() // logged by the node
				goto wait
			case s := <-sig:
				log.Info().Str("signal", s.String()).Msg("stopping")
			case err := <-n.Done():
				if errors.Is(err, node.ErrLeft) {
					log.Info().Msg("left the ring; exiting")
					return n.Close()
				}
				log.Error().Err(err).Msg("stopping")
				n.Close()
				return err
			}
			return n.Close()
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "TOML config file of name = value settings (flags win)")
	for _, s := range config.Settings() {
		f := cmd.Flags().VarPF(&settingFlag{s: s, text: s.Default}, s.Name, "", s.Usage)
		if s.Type == "bool" {
			f.NoOptDefVal = "true" // --hints alone means --hints=true
		}
	}
	return cmd
}

// settingFlag is a node setting as a flag: --help shows its type. It keeps
// the text; config.Parse checks and applies it with every other setting,
// so that one start-up reports every bad value, not only the first.
type settingFlag struct {
	s    config.Setting
	text string
}

func (f *settingFlag) String() string     { return f.text }
func (f *settingFlag) Type() string       { return f.s.Type }
func (f *settingFlag) Set(v string) error { f.text = v; return nil }

// indent puts each line of a joined error on its own indented line.
func indent(err error) error {
	return fmt.Errorf("  %s", replaceAll(err.Error(), "\n", "\n  "))
}

func newLogger(cfg node.Config) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.LogLevel)
	console := cfg.LogFormat == "console" || (cfg.LogFormat == "auto" && isatty.IsTerminal(os.Stderr.Fd()))
	var l zerolog.Logger
	if console {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"})
	} else {
		l = zerolog.New(os.Stderr)
	}
	return l.Level(level).With().Timestamp().Logger()
}
