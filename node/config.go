package node

import "github.com/mnemo-kv/mnemo/config"

// Config is what New takes; it lives in package config with its defaults,
// checks and settings registry.
type Config = config.Config
