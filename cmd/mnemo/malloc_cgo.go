//go:build cgo && linux

package main

// mallocArenas bounds glibc's malloc arenas to 2 (unless the operator set
// MALLOC_ARENA_MAX). With cgo, Pebble allocates its block cache and
// memtables with C malloc from many threads, and glibc gives threads that
// contend their own arenas (up to 8 per core): freed cache blocks stay
// spread over the arenas and the process keeps them. Three nodes holding
// 1M keys of 100 bytes each had 220-227 MiB RSS with glibc's default and
// 169-175 MiB with MALLOC_ARENA_MAX=2, the Go runtime's part being the same
// (about 95 MiB). It runs as a C constructor, before the Go runtime starts
// threads: called from a Go init, mallopt came too late and left 190-207
// MiB.

/*
#include <malloc.h>
#include <stdlib.h>

__attribute__((constructor)) static void mnemoMallocArenas(void) {
	if (getenv("MALLOC_ARENA_MAX") == NULL) {
		mallopt(M_ARENA_MAX, 2);
	}
}
*/
import "C"
