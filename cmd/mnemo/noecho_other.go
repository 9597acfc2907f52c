//go:build !linux

package main

// noEcho cannot turn echo off here: the password is echoed. Pipe it in or
// use --password-file.
func noEcho(fd uintptr) (restore func()) { return func() {} }
