package security

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Files names a node's (or client's) TLS material: PEM files, as the
// tls-cert, tls-key and tls-ca settings give them.
type Files struct {
	Cert string // certificate, optionally followed by intermediates
	Key  string // its private key
	CA   string // the CA bundle trusted for peers: one or several CAs
}

// Material is one loaded set of Files. It is immutable once made.
type Material struct {
	// Cert is the certificate chain and key, Leaf set.
	Cert *tls.Certificate
	// Identity is what Cert's URI SAN names (zero if it names none).
	Identity Identity
	// CAs trusts every CA of the bundle, so a CA rotation can trust the
	// old and the new one at once.
	CAs *x509.CertPool
	// NotAfter is when Cert expires.
	NotAfter time.Time
}

// LoadMaterial reads and checks f: the key must match the certificate and
// the bundle must hold at least one CA certificate. Errors name the file,
// never its content.
func LoadMaterial(f Files) (*Material, error) {
	certPEM, keyPEM, caPEM, err := readFiles(f)
	if err != nil {
		return nil, err
	}
	return parseMaterial(f, certPEM, keyPEM, caPEM)
}

func readFiles(f Files) (certPEM, keyPEM, caPEM []byte, err error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, nil, nil, errors.New("security: TLS needs tls-cert, tls-key and tls-ca")
	}
	if certPEM, err = os.ReadFile(f.Cert); err != nil {
		return nil, nil, nil, fmt.Errorf("security: read tls-cert: %w", err)
	}
	if keyPEM, err = os.ReadFile(f.Key); err != nil {
		return nil, nil, nil, fmt.Errorf("security: read tls-key: %w", err)
	}
	if caPEM, err = os.ReadFile(f.CA); err != nil {
		return nil, nil, nil, fmt.Errorf("security: read tls-ca: %w", err)
	}
	return certPEM, keyPEM, caPEM, nil
}

func parseMaterial(f Files, certPEM, keyPEM, caPEM []byte) (*Material, error) {
	// NB: tls.X509KeyPair's errors never quote the key's bytes.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("security: tls-cert %s and tls-key %s: %w", f.Cert, f.Key, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("security: tls-cert %s: %w", f.Cert, err)
		}
		pair.Leaf = leaf
	}
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("security: tls-ca %s: %w", f.CA, err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	id, _ := IdentityOf(leaf)
	return &Material{Cert: &pair, Identity: id, CAs: pool, NotAfter: leaf.NotAfter}, nil
}

// parseCerts reads every CERTIFICATE block of a PEM bundle.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return out, nil
}

func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("security: read %s: %w", path, err)
	}
	certs, err := parseCerts(b)
	if err != nil {
		return nil, fmt.Errorf("security: %s: %w", path, err)
	}
	return certs, nil
}

// ReloaderConfig tunes a Reloader.
type ReloaderConfig struct {
	// Interval is how often the files' content is compared with what was
	// loaded (tls-reload-interval); 0 turns polling off (Reload still
	// works). Comparing content, not modification times, follows
	// Kubernetes' secret volumes, which swap a symlink to a new directory.
	Interval time.Duration
	// Check, if set, vets new material before it is used: the node checks
	// that its certificate still names its own id.
	Check func(*Material) error
	// Logger receives reloads and refused files (names, never contents).
	Logger zerolog.Logger
}

// Reloader holds the current Material and replaces it when Reload is
// called (the node calls it on SIGHUP) or when the files' content changes.
// New material that does not load or fails Check is logged and the old one
// kept. The tls.Configs it makes read the current material at each
// handshake, so new connections use new files without a restart, and
// connections already open are left alone. Safe for concurrent use.
type Reloader struct {
	files Files
	cfg   ReloaderConfig
	cur   atomic.Pointer[Material]

	// mu serializes Reload; it guards sum, the hash of the files' content
	// last tried (loaded or refused), so a bad file is logged once, not
	// at every poll.
	mu  sync.Mutex
	sum [sha256.Size]byte

	failures prometheus.Counter
	reloads  prometheus.Counter

	// stop ends the poll loop; done is closed when it has returned.
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewReloader loads files (an error if they do not load or fail Check)
// and, when cfg.Interval > 0, starts polling them. The caller must Close it.
func NewReloader(files Files, cfg ReloaderConfig) (*Reloader, error) {
	certPEM, keyPEM, caPEM, err := readFiles(files)
	if err != nil {
		return nil, err
	}
	m, err := parseMaterial(files, certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, err
	}
	if cfg.Check != nil {
		if err := cfg.Check(m); err != nil {
			return nil, err
		}
	}
	r := &Reloader{
		files: files, cfg: cfg,
		sum:  contentSum(certPEM, keyPEM, caPEM),
		stop: make(chan struct{}), done: make(chan struct{}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mnemo_tls_reload_failures_total",
			Help: "TLS certificate, key or CA files that changed but were refused (the old ones were kept).",
		}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mnemo_tls_reloads_total", Help: "TLS material loaded after a change of its files.",
		}),
	}
	r.cur.Store(m)
	if cfg.Interval > 0 {
		go r.poll() // owned by r: Close stops it and waits
	} else {
		close(r.done)
	}
	return r, nil
}

// Current returns the material in use.
func (r *Reloader) Current() *Material { return r.cur.Load() }

// Reload reads the files and, if their content changed since it was last
// tried, loads them. It reports whether new material is now in use; a
// refusal is also logged and counted, and the old material stays.
func (r *Reloader) Reload() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, keyPEM, caPEM, err := readFiles(r.files)
	if err != nil {
		// A file caught mid-swap, or removed: try again at the next poll.
		return false, r.refuse(err)
	}
	sum := contentSum(certPEM, keyPEM, caPEM)
	if sum == r.sum {
		return false, nil
	}
	r.sum = sum
	m, err := parseMaterial(r.files, certPEM, keyPEM, caPEM)
	if err == nil && r.cfg.Check != nil {
		err = r.cfg.Check(m)
	}
	if err != nil {
		return false, r.refuse(err)
	}
	r.cur.Store(m)
	r.reloads.Inc()
	r.cfg.Logger.Info().Str("cert", r.files.Cert).Str("identity", m.Identity.String()).
		Time("not_after", m.NotAfter).Msg("tls: new certificate material loaded")
	return true, nil
}

func (r *Reloader) refuse(err error) error {
	r.failures.Inc()
	old := r.cur.Load()
	r.cfg.Logger.Error().Err(err).Time("kept_not_after", old.NotAfter).
		Msg("tls: new certificate material refused; keeping the old")
	return err
}

// contentSum hashes the three files' content, lengths included so that
// bytes moving between files change it.
func contentSum(parts ...[]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

func (r *Reloader) poll() {
	defer close(r.done)
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			_, _ = r.Reload() // refusals are logged by Reload
		}
	}
}

// Close stops polling and waits for it. Idempotent.
func (r *Reloader) Close() error {
	r.closeOnce.Do(func() { close(r.stop) })
	<-r.done
	return nil
}

// Collectors are the reloader's metrics: mnemo_tls_cert_expiry_seconds
// (seconds until the certificate in use expires; negative once expired),
// reloads and refusals.
func (r *Reloader) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mnemo_tls_cert_expiry_seconds",
			Help: "Seconds until the TLS certificate in use expires (negative: expired).",
		}, func() float64 { return time.Until(r.cur.Load().NotAfter).Seconds() }),
		r.failures, r.reloads,
	}
}

// ClientAuth says what a server asks of its clients' certificates.
type ClientAuth uint8

const (
	// NoClientCert asks for none (RESP and HTTP with passwords or tokens).
	NoClientCert ClientAuth = iota
	// OptionalClientCert verifies one if sent.
	OptionalClientCert
	// RequireClientCert refuses a client without a valid certificate: the
	// peer RPC port.
	RequireClientCert
)

// ServerOptions tunes ServerConfig.
type ServerOptions struct {
	ClientAuth ClientAuth
	// Check, if set, vets a verified client certificate's identity with
	// the connection's remote address: the node checks that a node
	// identity is the gossip member at that address. An error fails the
	// handshake.
	Check func(remote net.Addr, id Identity) error
}

// ServerConfig returns a server tls.Config (TLS 1.3 at least) presenting
// the current certificate and verifying clients against the current CA
// bundle, both read at each handshake.
func (r *Reloader) ServerConfig(opts ServerOptions) *tls.Config {
	return serverConfig(r.Current, opts)
}

func serverConfig(get func() *Material, opts ServerOptions) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS13}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		m := get()
		var remote net.Addr
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr()
		}
		c := &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{*m.Cert},
			// Chains are verified by VerifyConnection against m.CAs, the
			// bundle of this handshake (tls.Config.ClientCAs would be
			// another copy to keep current).
			ClientAuth: tls.NoClientCert,
		}
		switch opts.ClientAuth {
		case OptionalClientCert:
			c.ClientAuth = tls.RequestClientCert
		case RequireClientCert:
			c.ClientAuth = tls.RequireAnyClientCert
		}
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				if opts.ClientAuth == RequireClientCert {
					return errors.New("security: a client certificate is required")
				}
				return nil
			}
			id, err := verifyPeer(m, cs.PeerCertificates, x509.ExtKeyUsageClientAuth)
			if err != nil {
				return err
			}
			if opts.Check != nil {
				return opts.Check(remote, id)
			}
			return nil
		}
		return c, nil
	}
	return base
}

// ClientConfig returns a client tls.Config (TLS 1.3 at least) presenting
// the current certificate and accepting only a server whose certificate
// chains to the current CA bundle and names want: the node id the ring
// says is at the dialed address.
func (r *Reloader) ClientConfig(want Identity) *tls.Config {
	return clientConfig(r.Current, func(got Identity) error {
		if got != want {
			return fmt.Errorf("security: the server's certificate names %s, but %s is expected there", got, want)
		}
		return nil
	})
}

func clientConfig(get func() *Material, check func(Identity) error) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// NB: not insecure: VerifyConnection verifies the chain against
		// the current bundle and the identity, instead of a host name
		// (node certificates name node ids; addresses move).
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := get(); m.Cert != nil {
				return m.Cert, nil
			}
			return &tls.Certificate{}, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("security: the server sent no certificate")
			}
			id, err := verifyPeer(get(), cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			return check(id)
		},
	}
}

// verifyPeer verifies a peer's chain against m's CAs for usage and
// returns the identity its leaf names.
func verifyPeer(m *Material, chain []*x509.Certificate, usage x509.ExtKeyUsage) (Identity, error) {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{
		Roots: m.CAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage},
	}); err != nil {
		return Identity{}, fmt.Errorf("security: peer certificate: %w", err)
	}
	return IdentityOf(chain[0])
}

// LoadClientConfig makes the tls.Config of a client (the CLI, or an SDK
// user with PEM files): it trusts the CA bundle in caFile, presents the
// certificate in certFile and keyFile when given (a client certificate,
// mnemo://client/<name>, or a node's), and accepts any node of that CA.
// The files are read once.
func LoadClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, errors.New("security: --tls-ca is needed to verify the nodes")
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("security: --tls-cert and --tls-key go together")
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("security: read tls-ca: %w", err)
	}
	m := &Material{}
	if certFile != "" {
		if m, err = LoadMaterial(Files{Cert: certFile, Key: keyFile, CA: caFile}); err != nil {
			return nil, err
		}
	} else {
		cas, err := parseCerts(caPEM)
		if err != nil {
			return nil, fmt.Errorf("security: tls-ca %s: %w", caFile, err)
		}
		m.CAs = x509.NewCertPool()
		for _, c := range cas {
			m.CAs.AddCert(c)
		}
	}
	return clientConfig(func() *Material { return m }, func(id Identity) error {
		if id.Kind != NodeIdentity {
			return fmt.Errorf("security: the server's certificate names %s, not a node", id)
		}
		return nil
	}), nil
}

// PeerIdentity returns the verified identity of a TLS connection's peer
// (a *tls.Conn or a conn from a wrapped listener), and false for a
// plaintext connection or one whose peer sent no certificate. Call it
// after the handshake (the first Read).
func PeerIdentity(c net.Conn) (Identity, bool) {
	cs, ok := ConnectionState(c)
	if !ok || len(cs.PeerCertificates) == 0 {
		return Identity{}, false
	}
	id, err := IdentityOf(cs.PeerCertificates[0])
	return id, err == nil
}

// ConnectionState returns the TLS state of c, and false if c is not a
// TLS connection (or its handshake has not run).
func ConnectionState(c net.Conn) (tls.ConnectionState, bool) {
	switch t := c.(type) {
	case *tls.Conn:
		cs := t.ConnectionState()
		return cs, cs.HandshakeComplete
	case *Conn:
		return t.ConnectionState()
	}
	return tls.ConnectionState{}, false
}
