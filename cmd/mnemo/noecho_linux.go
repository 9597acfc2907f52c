package main

import "golang.org/x/sys/unix"

// noEcho turns off the terminal's echo on fd and returns what restores it;
// on failure it does nothing (the password is then echoed).
func noEcho(fd uintptr) (restore func()) {
	old, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
	if err != nil {
		return func() {}
	}
	t := *old
	t.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(int(fd), unix.TCSETS, &t); err != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetTermios(int(fd), unix.TCSETS, old) }
}
