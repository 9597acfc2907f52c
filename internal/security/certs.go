package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority that issues node and client certificates:
// what `mnemo certs` writes and what tests use to make valid, expired,
// other-CA, wrong-id and client-only certificates. Keys are ECDSA P-256.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA named name, valid from now for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("security: generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"mnemo"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("security: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("security: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads a CA's certificate and key from PEM files (as WriteCA wrote
// them).
func LoadCA(certFile, keyFile string) (*CA, error) {
	certs, err := readCerts(certFile)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("security: read CA key: %w", err)
	}
	block, _ := pem.Decode(kb)
	if block == nil {
		return nil, fmt.Errorf("security: %s holds no PEM key", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("security: parse CA key %s: %w", keyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("security: CA key %s is not ECDSA", keyFile)
	}
	return &CA{Cert: certs[0], Key: key}, nil
}

// CertRequest says what certificate Issue makes.
type CertRequest struct {
	// Identity goes in the URI SAN; a node's certificate serves and
	// dials (server and client auth), a client's only dials.
	Identity Identity
	// Hosts are DNS names or IP addresses added as SANs, for clients
	// that verify host names (redis-cli, curl). Optional.
	Hosts []string
	// NotBefore and NotAfter bound validity. Zero NotBefore: a minute
	// ago (clock skew); zero NotAfter: NotBefore plus a year.
	NotBefore, NotAfter time.Time
}

// Cert is an issued certificate and its key, as PEM.
type Cert struct {
	CertPEM, KeyPEM []byte
}

// Issue signs a certificate for req.
func (ca *CA) Issue(req CertRequest) (Cert, error) {
	if req.Identity.Kind == 0 || req.Identity.Name == "" {
		return Cert{}, errors.New("security: certificate request names no identity")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, fmt.Errorf("security: generate key: %w", err)
	}
	nb := req.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Minute)
	}
	na := req.NotAfter
	if na.IsZero() {
		na = nb.Add(365 * 24 * time.Hour)
	}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if req.Identity.Kind == NodeIdentity {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.Identity.Name, Organization: []string{"mnemo"}},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  eku,
		URIs:         []*url.URL{req.Identity.URI()},
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return Cert{}, fmt.Errorf("security: sign certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Cert{}, fmt.Errorf("security: encode key: %w", err)
	}
	return Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
	}, nil
}

// CertPEM is the CA's certificate as PEM: the bundle nodes and clients
// trust (concatenate several during a CA rotation).
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM is the CA's private key as PEM.
func (ca *CA) KeyPEM() ([]byte, error) {
	kb, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("security: encode CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}

// WriteCA writes ca.crt and ca.key into dir (the key readable by its owner
// only).
func (ca *CA) WriteCA(dir string) error {
	kp, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "ca.crt"), ca.CertPEM(), 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "ca.key"), kp, 0o600)
}

// Write writes the certificate and key as <dir>/<name>.crt and .key.
func (c Cert) Write(dir, name string) error {
	if err := writeFile(filepath.Join(dir, name+".crt"), c.CertPEM, 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".key"), c.KeyPEM, 0o600)
}

// writeFile writes b to path through a temporary file and a rename, so a
// node polling path never reads half a file.
func writeFile(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("security: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("security: write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("security: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("security: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("security: write %s: %w", path, err)
	}
	return nil
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("security: crypto/rand failed: %v", err))
	}
	return n
}
