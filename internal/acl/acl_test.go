package acl

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := HashPassword([]byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashPasswordRoundTrip(t *testing.T) {
	h := mustHash(t, "s3cret pass")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not the PHC form with the default parameters", h)
	}
	if strings.Contains(h, "s3cret") {
		t.Fatal("hash holds the password")
	}
	if h2 := mustHash(t, "s3cret pass"); h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	ph, err := parseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	if ph.String() != h {
		t.Fatalf("String() = %q, want %q", ph.String(), h)
	}
	if !ph.verify([]byte("s3cret pass")) || ph.verify([]byte("s3cret pasS")) || ph.verify(nil) {
		t.Fatal("verify does not tell the password from others")
	}
	if _, err := HashPassword(nil); err == nil {
		t.Fatal("empty password hashed")
	}
}

func TestParseHashBounds(t *testing.T) {
	good := mustHash(t, "x")
	parts := strings.Split(good, "$")
	for _, tc := range []struct{ name, in, want string }{
		{"plaintext", "hunter2", "argon2id hash"},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuu", "argon2id hash"},
		{"version", strings.Replace(good, "v=19", "v=16", 1), "version"},
		{"huge memory", strings.Replace(good, "m=19456", "m=4194304", 1), "m=4194304"},
		{"zero time", strings.Replace(good, "t=2", "t=0", 1), "t=0"},
		{"many lanes", strings.Replace(good, "p=1", "p=255", 1), "p=255"},
		{"padded params", strings.Replace(good, "m=19456", "m=019456", 1), "argon2id hash"},
		{"short salt", "$" + strings.Join(append(append([]string{}, parts[1:4]...), "AAAA", parts[5]), "$"), "salt"},
		{"bad key", "$" + strings.Join(append(append([]string{}, parts[1:5]...), "!!"), "$"), "hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHash(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseHash(%q) = %v, want an error with %q", tc.in, err, tc.want)
			}
		})
	}
}

func testUsers(t testing.TB) *Users {
	t.Helper()
	data := `
[users.default]
password-hash = "` + mustHash(t, "defpw") + `"
allow = ["all"]

[users.reader]
password-hash = "` + mustHash(t, "readpw") + `"
allow = ["read"]
keys = ["pub:*", "x"]

[users.off]
password-hash = "` + mustHash(t, "offpw") + `"
allow = ["read", "write"]
enabled = false
`
	us, err := Parse("users.toml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return us
}

func TestAuthenticate(t *testing.T) {
	us := testUsers(t)
	ctx := context.Background()
	for _, tc := range []struct {
		user, pw string
		ok       bool
	}{
		{"default", "defpw", true},
		{"reader", "readpw", true},
		{"reader", "defpw", false},
		{"default", "", false},
		{"nobody", "defpw", false},
		{"off", "offpw", false}, // disabled
		{"", "defpw", false},
	} {
		before := verifications.Load()
		u, err := us.Authenticate(ctx, tc.user, []byte(tc.pw))
		if got := verifications.Load() - before; got != 1 {
			t.Errorf("%s/%s: %d argon2id checks, want 1 (an unknown user must cost a wrong password's work)", tc.user, tc.pw, got)
		}
		if tc.ok != (err == nil) || tc.ok != (u != nil) {
			t.Errorf("Authenticate(%q, %q) = %v, %v; want ok=%v", tc.user, tc.pw, u, err, tc.ok)
			continue
		}
		if !tc.ok && !errors.Is(err, ErrWrongPass) {
			t.Errorf("Authenticate(%q, %q) error %v, want ErrWrongPass", tc.user, tc.pw, err)
		}
		if tc.ok && u.Name() != tc.user {
			t.Errorf("Authenticate(%q) returned user %q", tc.user, u.Name())
		}
	}
	// A huge password is refused after the same work.
	if _, err := us.Authenticate(ctx, "default", make([]byte, 1<<20)); !errors.Is(err, ErrWrongPass) {
		t.Fatalf("1 MiB password: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for range MaxConcurrentChecks {
		checks <- struct{}{}
	}
	_, err := us.Authenticate(cctx, "default", []byte("not-yet-checked"))
	for range MaxConcurrentChecks {
		<-checks
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate waiting for a turn with a cancelled context: %v", err)
	}
}

func TestUserRules(t *testing.T) {
	us := testUsers(t)
	def, rd := us.Lookup("default"), us.Lookup("reader")
	if def == nil || rd == nil {
		t.Fatal("Lookup missed a user")
	}
	if us.Lookup("off") != nil || us.Lookup("nobody") != nil {
		t.Fatal("Lookup found a disabled or unknown user")
	}
	if !def.Allowed(All) || !def.KeyAllowed([]byte("anything")) {
		t.Fatal("default (all, no keys field) is not allowed everything")
	}
	if !rd.Allowed(Read) || rd.Allowed(Write) || rd.Allowed(Read|Write) || rd.Allowed(Admin) {
		t.Fatalf("reader holds %v, want read only", rd.Perms())
	}
	for key, want := range map[string]bool{"pub:1": true, "pub:": true, "x": true, "xx": false, "priv:1": false, "": false} {
		if got := rd.KeyAllowed([]byte(key)); got != want {
			t.Errorf("reader KeyAllowed(%q) = %v, want %v", key, got, want)
		}
	}
	if got := strings.Join(us.Names(), ","); got != "default,off,reader" {
		t.Fatalf("Names() = %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	h := mustHash(t, "pw")
	for _, tc := range []struct{ name, in string }{
		{"no users", ""},
		{"syntax", "[users.a\n"},
		{"unknown field", "[users.a]\npassword-hash = \"" + h + "\"\nallow = [\"read\"]\npassword = \"hunter2\"\n"},
		{"plaintext hash", "[users.a]\npassword-hash = \"hunter2\"\nallow = [\"read\"]\n"},
		{"no hash", "[users.a]\nallow = [\"read\"]\n"},
		{"no allow", "[users.a]\npassword-hash = \"" + h + "\"\n"},
		{"bad rule", "[users.a]\npassword-hash = \"" + h + "\"\nallow = [\"rw\"]\n"},
		{"bad pattern", "[users.a]\npassword-hash = \"" + h + "\"\nallow = [\"read\"]\nkeys = [\"[a\"]\n"},
		{"bad name", "[users.\"a b\"]\npassword-hash = \"" + h + "\"\nallow = [\"read\"]\n"},
		{"top-level key", "users = 3\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tc.in))
			if err == nil {
				t.Fatalf("Parse accepted %q", tc.in)
			}
			if !strings.Contains(err.Error(), "f.toml") {
				t.Fatalf("error %q does not name the file", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q quotes a password", err)
			}
		})
	}
	// Several mistakes are reported at once.
	_, err := Parse("f.toml", []byte("[users.a]\nallow = [\"rw\"]\n[users.b]\npassword-hash = \"x\"\nallow = [\"read\"]\n"))
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Fatalf("want three errors at once, got %v", err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.toml")
	if err := os.WriteFile(path, []byte("[users.a]\npassword-hash = \""+mustHash(t, "pw")+"\"\nallow = [\"write\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	us, err := Load(path)
	if err != nil || us.Len() != 1 || !us.Lookup("a").Allowed(Write) {
		t.Fatalf("Load: %v, %v", us, err)
	}
	if _, err := Load(path + ".missing"); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[users.a]\npassword-hash = \"$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA\"\nallow = [\"read\"]\nkeys = [\"a*[b-c]\"]\n"))
	f.Add([]byte("[users.default]\nallow=[\"all\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		us, err := Parse("fuzz", data)
		if err == nil && us.Len() == 0 {
			t.Fatal("no error and no users")
		}
	})
}

// TestAuthenticateRemembersSuccess: the password that passed a user's
// check passes again without an argon2id check; any other password, for
// that user or another, still pays one.
func TestAuthenticateRemembersSuccess(t *testing.T) {
	us := testUsers(t)
	ctx := context.Background()
	checksFor := func(user, pw string, wantOK bool) int64 {
		t.Helper()
		before := verifications.Load()
		_, err := us.Authenticate(ctx, user, []byte(pw))
		if (err == nil) != wantOK {
			t.Fatalf("Authenticate(%s, %s) = %v, want ok=%v", user, pw, err, wantOK)
		}
		return verifications.Load() - before
	}
	if n := checksFor("reader", "readpw", true); n != 1 {
		t.Fatalf("first success: %d checks, want 1", n)
	}
	if n := checksFor("reader", "readpw", true); n != 0 {
		t.Fatalf("second success: %d checks, want 0", n)
	}
	for _, tc := range [][2]string{{"reader", "readpw2"}, {"reader", "readp"}, {"default", "readpw"}, {"nobody", "readpw"}} {
		if n := checksFor(tc[0], tc[1], false); n != 1 {
			t.Fatalf("%s/%s after reader's success: %d checks, want 1", tc[0], tc[1], n)
		}
	}
	// A disabled user's password is never remembered.
	checksFor("off", "offpw", false)
	if n := checksFor("off", "offpw", false); n != 1 {
		t.Fatalf("disabled user: %d checks, want 1", n)
	}
}
