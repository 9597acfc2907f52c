package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mnemo-kv/mnemo/internal/acl"
	"github.com/mnemo-kv/mnemo/internal/adminauth"
)

// secrets is what the node reads from its secret files at start-up: the
// RESP users and the admin tokens. NB: none of it is ever logged or shown
// on /status.
type secrets struct {
	// users are the RESP port's users; nil: the port is open (allowed on
	// loopback with security disabled, or --insecure; see config).
	users *acl.Users
	// admin is the admin port's credentials.
	admin adminauth.Config
}

// loadSecrets reads --resp-users, --admin-token-file and
// --metrics-token-file. A bad file stops start-up with its name and what
// is wrong, never its content.
func (n *Node) loadSecrets() error {
	cfg := n.cfg
	if cfg.RESPUsers != "" {
		us, err := acl.Load(cfg.RESPUsers)
		if err != nil {
			return err
		}
		n.secrets.users = us
		n.log.Info().Str("file", cfg.RESPUsers).Int("users", us.Len()).Msg("resp users loaded")
	}
	if cfg.AdminTokenFile != "" {
		tok, err := adminauth.LoadToken(cfg.AdminTokenFile)
		if err != nil {
			return err
		}
		n.secrets.admin.AdminToken = tok
	}
	if cfg.MetricsTokenFile != "" {
		tok, err := adminauth.LoadToken(cfg.MetricsTokenFile)
		if err != nil {
			return err
		}
		n.secrets.admin.MetricsToken = tok
	}
	// No token: open, which config allows only on loopback (or with
	// --insecure).
	n.secrets.admin.Open = cfg.AdminTokenFile == "" && cfg.MetricsTokenFile == ""
	return nil
}

// registerAdminMetrics exports the admin port's refusals.
func (n *Node) registerAdminMetrics(refused func() uint64) {
	n.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mnemo_admin_auth_failures_total",
		Help: "Admin HTTP requests refused (401 or 403) for want of a valid token or client certificate.",
	}, func() float64 { return float64(refused()) }))
}
