package acl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/argon2"
)

// Perm is a set of rules a user holds, and the rules a command needs.
type Perm uint8

const (
	// Read runs commands that read keys.
	Read Perm = 1 << iota
	// Write runs commands that change keys.
	Write
	// Admin runs the server's introspection commands (INFO, CONFIG).
	Admin

	// All is every rule.
	All = Read | Write | Admin
)

// String lists the rules as the users file spells them.
func (p Perm) String() string {
	var s []string
	for _, r := range []struct {
		p    Perm
		name string
	}{{Read, "read"}, {Write, "write"}, {Admin, "admin"}} {
		if p&r.p != 0 {
			s = append(s, r.name)
		}
	}
	return strings.Join(s, ",")
}

// Argon2id parameters of new hashes (OWASP's password storage cheat sheet:
// m=19 MiB, t=2, p=1).
const (
	defaultMemory  = 19 * 1024 // KiB
	defaultTime    = 2
	defaultThreads = 1
	saltLen        = 16 // bytes
	keyLen         = 32 // bytes

	// maxMemory, maxTime and maxThreads bound the parameters a hash in a
	// users file may ask for, so a typo cannot make every AUTH allocate
	// gigabytes.
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16

	// maxPassword bounds, in bytes, the passwords Authenticate hashes.
	maxPassword = 4096
)

// MaxConcurrentChecks bounds the argon2id checks running at once over
// every Users: each takes its hash's memory (19 MiB by default) and a
// core for about 30 ms. Further AUTHs wait for a turn, so a flood of wrong
// passwords takes at most a quarter of the cores (one on a small machine)
// from the node's work.
var MaxConcurrentChecks = max(1, runtime.GOMAXPROCS(0)/4)

// checks is the semaphore of MaxConcurrentChecks.
var checks = make(chan struct{}, MaxConcurrentChecks)

// verifications counts argon2id checks, so tests can see that an unknown
// user costs one.
var verifications atomic.Int64

// hash is one parsed argon2id PHC string.
type hash struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// HashPassword returns the argon2id hash of password, with a random salt,
// in the PHC string form the users file takes.
func HashPassword(password []byte) (string, error) {
	if len(password) == 0 {
		return "", errors.New("acl: empty password")
	}
	if len(password) > maxPassword {
		return "", fmt.Errorf("acl: password of %d bytes is over %d", len(password), maxPassword)
	}
	h := hash{memory: defaultMemory, time: defaultTime, threads: defaultThreads, salt: make([]byte, saltLen)}
	if _, err := rand.Read(h.salt); err != nil {
		return "", fmt.Errorf("acl: salt: %w", err)
	}
	h.key = argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, keyLen)
	return h.String(), nil
}

// String is the PHC form: $argon2id$v=19$m=...,t=...,p=...$salt$key, with
// unpadded standard base64.
func (h *hash) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// errHashForm is what a users file gets for anything but mnemo's hashes.
var errHashForm = errors.New("is not an argon2id hash of the form $argon2id$v=19$m=...,t=...,p=...$salt$hash (make one with `mnemo users hash`)")

// parseHash reads a PHC string and checks its parameters are in bounds.
func parseHash(s string) (*hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, errHashForm
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return nil, fmt.Errorf("has version %q, want v=%d", parts[2], argon2.Version)
	}
	h := &hash{}
	var m, t, p uint64
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return nil, errHashForm
	}
	switch {
	case m < 8*p || m > maxMemory:
		return nil, fmt.Errorf("asks for m=%d KiB: must be in [8*p, %d]", m, maxMemory)
	case t < 1 || t > maxTime:
		return nil, fmt.Errorf("asks for t=%d: must be in [1, %d]", t, maxTime)
	case p < 1 || p > maxThreads:
		return nil, fmt.Errorf("asks for p=%d: must be in [1, %d]", p, maxThreads)
	}
	h.memory, h.time, h.threads = uint32(m), uint32(t), uint8(p)
	var err error
	b64 := base64.RawStdEncoding
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return nil, errors.New("has a salt that is not 8 to 64 bytes of unpadded base64")
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return nil, errors.New("has a hash that is not 16 to 64 bytes of unpadded base64")
	}
	return h, nil
}

// verify reports whether password hashes to h.key, comparing in constant
// time.
func (h *hash) verify(password []byte) bool {
	verifications.Add(1)
	got := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// User is one user of the users file. It is immutable once loaded and safe
// for concurrent use.
type User struct {
	name    string
	hash    *hash
	perms   Perm
	keys    []string // glob patterns; a key must match one
	enabled bool
}

// Name is the user's name.
func (u *User) Name() string { return u.name }

// Allowed reports whether u holds every rule of p.
func (u *User) Allowed(p Perm) bool { return u.perms&p == p }

// Perms is the user's rules.
func (u *User) Perms() Perm { return u.perms }

// KeyAllowed reports whether key matches one of u's key patterns.
func (u *User) KeyAllowed(key []byte) bool {
	for _, pat := range u.keys {
		if pat == "*" || Match(pat, key) {
			return true
		}
	}
	return false
}

// Users is a loaded users file. Safe for concurrent use.
type Users struct {
	byName map[string]*User
	// dummy is checked for unknown and disabled users, so they cost what
	// a wrong password costs.
	dummy *hash

	// macKey is a random per-process key for the digests in mu.verified.
	macKey []byte
	// mu guards verified: for each user, an HMAC-SHA256 (under macKey) of
	// the last password that passed the argon2id check. A client that
	// reconnects with the right password (a pool of 50 connections, a
	// restarted service) pays one argon2id check, not one per connection;
	// a wrong password never matches, so it always pays the full check.
	mu struct {
		sync.Mutex
		verified map[string][sha256.Size]byte
	}
}

// mac is the digest mu.verified keeps for a user's password.
func (us *Users) mac(name string, password []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, us.macKey)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write(password)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// verifiedBefore reports whether password is the one that last passed the
// check for name, comparing in constant time. NB: it does the same work
// for a known and an unknown name.
func (us *Users) verifiedBefore(name string, password []byte) bool {
	sum := us.mac(name, password)
	us.mu.Lock()
	prev, ok := us.mu.verified[name]
	us.mu.Unlock()
	return hmac.Equal(sum[:], prev[:]) && ok
}

// Len is the number of users.
func (us *Users) Len() int { return len(us.byName) }

// Names lists the users, sorted.
func (us *Users) Names() []string {
	names := make([]string, 0, len(us.byName))
	for n := range us.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Lookup returns the enabled user called name, or nil: how a client
// certificate's name becomes a user, with no password.
func (us *Users) Lookup(name string) *User {
	u := us.byName[name]
	if u == nil || !u.enabled {
		return nil
	}
	return u
}

// ErrWrongPass is Authenticate's answer to an unknown user, a disabled
// one and a wrong password alike.
var ErrWrongPass = errors.New("acl: invalid username-password pair or user is disabled")

// Authenticate returns the user when password is theirs. An unknown user,
// a disabled one and a wrong password all return ErrWrongPass after the
// same work (one argon2id check). The password that last passed a user's
// check passes again without one (Users.mu.verified). At most
// MaxConcurrentChecks run at once in the process; waiting for a turn ends
// with ctx's error.
func (us *Users) Authenticate(ctx context.Context, name string, password []byte) (*User, error) {
	if len(password) > maxPassword {
		password = password[:maxPassword] // still hashed: the same cost
	}
	if us.verifiedBefore(name, password) {
		if u := us.Lookup(name); u != nil {
			return u, nil
		}
	}
	select {
	case checks <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-checks }()
	u := us.byName[name]
	h := us.dummy
	if u != nil && u.enabled {
		h = u.hash
	}
	ok := h.verify(password)
	if !ok || u == nil || !u.enabled || h == us.dummy {
		return nil, ErrWrongPass
	}
	sum := us.mac(name, password)
	us.mu.Lock()
	us.mu.verified[name] = sum
	us.mu.Unlock()
	return u, nil
}

// fileUser is one [users.NAME] table of the users file.
type fileUser struct {
	PasswordHash string   `toml:"password-hash"`
	Allow        []string `toml:"allow"`
	Keys         []string `toml:"keys"`
	Enabled      *bool    `toml:"enabled"`
}

// Load reads a users file (see the package doc). Every bad user and field
// is reported at once, each error naming the file.
func Load(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	return Parse(path, data)
}

// maxUserName bounds a user name in bytes, as it appears in replies and
// certificates.
const maxUserName = 128

// Parse reads a users file's content; name is the file's name for errors.
// NB: errors never quote a password-hash value.
func Parse(name string, data []byte) (*Users, error) {
	var f struct {
		Users map[string]fileUser `toml:"users"`
	}
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("acl: %s:%d: %s", name, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("acl: %s: %w", name, err)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("acl: %s: "+format, append([]any{name}, args...)...))
	}
	for _, k := range md.Undecoded() {
		bad("unknown field %s (users are [users.NAME] tables of password-hash, allow, keys, enabled)", k.String())
	}
	us := &Users{byName: make(map[string]*User, len(f.Users))}
	for uname, fu := range f.Users {
		if uname == "" || len(uname) > maxUserName || strings.ContainsAny(uname, " \t\r\n/") {
			bad("user %q: a name is 1 to %d bytes without spaces or '/'", uname, maxUserName)
			continue
		}
		u := &User{name: uname, enabled: fu.Enabled == nil || *fu.Enabled}
		if fu.PasswordHash == "" {
			bad("user %s: password-hash is missing (make one with `mnemo users hash`)", uname)
		} else if h, err := parseHash(fu.PasswordHash); err != nil {
			bad("user %s: password-hash %v", uname, err)
		} else {
			u.hash = h
		}
		if len(fu.Allow) == 0 {
			bad("user %s: allow is missing: list read, write, admin or all", uname)
		}
		for _, r := range fu.Allow {
			switch strings.ToLower(strings.TrimSpace(r)) {
			case "read":
				u.perms |= Read
			case "write":
				u.perms |= Write
			case "admin":
				u.perms |= Admin
			case "all":
				u.perms |= All
			default:
				bad("user %s: allow %q is not read, write, admin or all", uname, r)
			}
		}
		u.keys = fu.Keys
		if fu.Keys == nil {
			u.keys = []string{"*"}
		}
		for _, pat := range u.keys {
			if err := ValidPattern(pat); err != nil {
				bad("user %s: keys %q: %v", uname, pat, err)
			}
		}
		us.byName[uname] = u
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	if len(us.byName) == 0 {
		return nil, fmt.Errorf("acl: %s: no users (add a [users.NAME] table)", name)
	}
	// The dummy has the default parameters: those of every hash mnemo
	// makes.
	us.dummy = &hash{memory: defaultMemory, time: defaultTime, threads: defaultThreads,
		salt: make([]byte, saltLen), key: make([]byte, keyLen)}
	us.macKey = make([]byte, 32)
	if _, err := rand.Read(us.dummy.salt); err != nil {
		return nil, fmt.Errorf("acl: salt: %w", err)
	}
	if _, err := rand.Read(us.macKey); err != nil {
		return nil, fmt.Errorf("acl: key: %w", err)
	}
	us.mu.verified = make(map[string][sha256.Size]byte, len(us.byName))
	return us, nil
}
