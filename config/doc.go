// Package config is what a mnemo node is started with: Config, its
// defaults (Default), the checks that span fields (Validate), and the
// registry of settings (Settings) that gives each one its flag and
// config-file name, type, default and help, so `mnemo node --help`, a TOML
// config file (ReadFile) and Parse agree on one list.
//
// A setting is added in three places, all in this package: a commented
// field on Config (unit and default), its default in Default, and its entry
// in Settings (with its parser); a range check that spans fields goes in
// fieldErrors. node.New takes the Config; nothing else reads flags.
//
// Secrets (keys, passwords, tokens) are never setting values: a setting
// names the file that holds them.
package config
