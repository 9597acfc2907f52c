package security

import "testing"

func TestModeRoundTrip(t *testing.T) {
	for _, m := range []Mode{Disabled, Transitional, Required} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("on"); err == nil {
		t.Fatal(`ParseMode("on") accepted`)
	}
}

// TestDialsTLS is the rolling upgrade's table: every pair of modes that can
// meet while the cluster is rolled one step speaks a language both accept.
func TestDialsTLS(t *testing.T) {
	all := []Mode{Disabled, Transitional, Required}
	for _, from := range all {
		for _, to := range all {
			if from == Disabled && to == Required || from == Required && to == Disabled {
				continue // never in one cluster: a roll moves one step
			}
			tls := from.DialsTLS(to)
			if tls && !to.AcceptsTLS() || !tls && !to.AcceptsPlaintext() {
				t.Errorf("%v dialing %v: tls=%v, which %v refuses", from, to, tls, to)
			}
		}
	}
}
