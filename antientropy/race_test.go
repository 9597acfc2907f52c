//go:build race

package antientropy

// raceEnabled: the race detector slows Pebble about tenfold, so the
// measured tests shrink (keeping the bench's density of keys per segment).
const raceEnabled = true
