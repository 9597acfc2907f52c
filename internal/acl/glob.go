package acl

import "errors"

// Match reports whether key matches the glob pattern, as Redis' key
// patterns do: * any run of bytes, ? one byte, [abc], [a-z] and [^a-z] one
// byte of a class, \x the byte x. pattern must pass ValidPattern. It runs
// in O(len(pattern) * len(key)) at worst (one backtracking point, the last
// star), never exponentially, whatever the pattern.
func Match(pattern string, key []byte) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(key) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if ok, next := matchClass(pattern, p, key[i]); ok {
					p = next
					i++
					continue
				}
			case '\\':
				if pattern[p+1] == key[i] {
					p += 2
					i++
					continue
				}
			default:
				if c == key[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last star take one more byte and retry from there.
		starI++
		i, p = starI, starP+1
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches c against the class opening at pattern[p] ('[') and
// returns the index after its ']'.
func matchClass(pattern string, p int, c byte) (bool, int) {
	j := p + 1
	neg := j < len(pattern) && pattern[j] == '^'
	if neg {
		j++
	}
	match := false
	for pattern[j] != ']' {
		lo := pattern[j]
		if lo == '\\' {
			j++
			lo = pattern[j]
		}
		hi := lo
		if j+2 < len(pattern) && pattern[j+1] == '-' && pattern[j+2] != ']' {
			j += 2
			hi = pattern[j]
			if hi == '\\' {
				j++
				hi = pattern[j]
			}
			if lo > hi {
				lo, hi = hi, lo
			}
		}
		if lo <= c && c <= hi {
			match = true
		}
		j++
	}
	return match != neg, j + 1
}

// maxPattern bounds a key pattern in bytes.
const maxPattern = 1024

// ValidPattern reports a pattern Match cannot take: empty, too long, a
// class without its ']' or a trailing '\'.
func ValidPattern(pattern string) error {
	if pattern == "" {
		return errors.New("empty pattern (use \"*\" for every key)")
	}
	if len(pattern) > maxPattern {
		return errors.New("pattern over 1024 bytes")
	}
	for p := 0; p < len(pattern); p++ {
		switch pattern[p] {
		case '\\':
			if p+1 >= len(pattern) {
				return errors.New("pattern ends in '\\'")
			}
			p++
		case '[':
			j := p + 1
			if j < len(pattern) && pattern[j] == '^' {
				j++
			}
			for ; j < len(pattern) && pattern[j] != ']'; j++ {
				if pattern[j] == '\\' {
					j++
				}
			}
			if j >= len(pattern) {
				return errors.New("'[' without its ']'")
			}
			p = j
		}
	}
	return nil
}
