package acl

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, key string
		want     bool
	}{
		{"*", "", true},
		{"*", "abc", true},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c", "abcbd", false},
		{"a*b*c", "axxbyyc", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[abc]x", "bx", true},
		{"[abc]x", "dx", false},
		{"[^abc]x", "dx", true},
		{"[^abc]x", "ax", false},
		{"[a-c]", "b", true},
		{"[c-a]", "b", true}, // reversed range, as Redis
		{"[a-c]", "d", false},
		{"[a-]", "-", true},
		{`[\]]`, "]", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\?`, "a?", true},
		{"cart:*", "cart:42", true},
		{"cart:*", "cart", false},
		{"user:*:name", "user:1:2:name", true},
		{"", "", true},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"**", "x", true},
		{"a/*", "a/b/c", true}, // unlike path.Match, * spans '/'
	} {
		if got := Match(tc.pat, []byte(tc.key)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pat, tc.key, got, tc.want)
		}
	}
}

func TestValidPattern(t *testing.T) {
	for pat, ok := range map[string]bool{"*": true, "a[bc]": true, `\[`: true, `[\]]`: true, "": false, "[ab": false, `ab\`: false, "[^": false, strings.Repeat("a", 2000): false} {
		if err := ValidPattern(pat); (err == nil) != ok {
			t.Errorf("ValidPattern(%q) = %v, want ok=%v", pat, err, ok)
		}
	}
}

// TestMatchNotExponential: a pattern of many stars against a long key that
// does not match finishes at once (a recursive matcher takes 2^n steps).
func TestMatchNotExponential(t *testing.T) {
	pat := strings.Repeat("a*", 30) + "b"
	key := []byte(strings.Repeat("a", 4000))
	if Match(pat, key) {
		t.Fatal("matched")
	}
}

// matchRef is a plain recursive matcher for *, ? and literals, the
// reference the fuzzer compares Match with.
func matchRef(pat string, key []byte) bool {
	if pat == "" {
		return len(key) == 0
	}
	switch pat[0] {
	case '*':
		for i := 0; i <= len(key); i++ {
			if matchRef(pat[1:], key[i:]) {
				return true
			}
		}
		return false
	case '?':
		return len(key) > 0 && matchRef(pat[1:], key[1:])
	}
	return len(key) > 0 && key[0] == pat[0] && matchRef(pat[1:], key[1:])
}

func FuzzMatch(f *testing.F) {
	f.Add("a*b?c", []byte("axxbyc"))
	f.Add("[a-z]*\\*", []byte("q*"))
	f.Fuzz(func(t *testing.T, pat string, key []byte) {
		if len(pat) > 12 || len(key) > 24 {
			return
		}
		if ValidPattern(pat) != nil {
			return
		}
		got := Match(pat, key) // must not panic on any valid pattern
		if strings.ContainsAny(pat, "[\\") {
			return
		}
		if want := matchRef(pat, key); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pat, key, got, want)
		}
	})
}
