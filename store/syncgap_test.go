package store

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walSyncFS counts the syncs of Pebble's write-ahead log files.
type walSyncFS struct {
	vfs.FS
	syncs atomic.Int64
}

type walSyncFile struct {
	vfs.File
	fs *walSyncFS
}

func (f walSyncFile) Sync() error     { f.fs.syncs.Add(1); return f.File.Sync() }
func (f walSyncFile) SyncData() error { f.fs.syncs.Add(1); return f.File.SyncData() }
func (f walSyncFile) SyncTo(n int64) (bool, error) {
	f.fs.syncs.Add(1)
	return f.File.SyncTo(n)
}

func (fs *walSyncFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return walSyncFile{File: f, fs: fs}, nil
}

func (fs *walSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *walSyncFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

func (fs *walSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

// TestSyncMinGap: with SyncAlways and a minimum gap, concurrent writers
// share fsyncs of the WAL, at most one per gap; every write acknowledged
// is there after a reopen. With no gap the same load syncs far more often
// (which shows the count measures something).
func TestSyncMinGap(t *testing.T) {
	const (
		gap     = 20 * time.Millisecond
		writers = 16
		run     = 300 * time.Millisecond
	)
	load := func(t *testing.T, minGap time.Duration) (syncs int64, elapsed time.Duration, acked []string) {
		fs := &walSyncFS{FS: vfs.Default}
		dir := t.TempDir()
		s, err := Open(Options{Dir: dir, NodeID: "n1", Sync: SyncAlways, SyncMinGap: minGap, FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		val := bytes.Repeat([]byte("v"), 100)
		var mu sync.Mutex
		var wg sync.WaitGroup
		before := fs.syncs.Load()
		start := time.Now()
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Since(start) < run; i++ {
					key := fmt.Sprintf("w%d-%d", w, i)
					if _, err := s.Put(PutRequest{Key: []byte(key), Value: val}); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		elapsed = time.Since(start)
		syncs = fs.syncs.Load() - before
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(Options{Dir: dir, NodeID: "n1", Sync: SyncAlways})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, k := range acked {
			if _, err := s.Get([]byte(k)); err != nil {
				t.Fatalf("acknowledged %s: %v after reopen", k, err)
			}
		}
		return syncs, elapsed, acked
	}

	syncs, elapsed, acked := load(t, gap)
	bound := int64(elapsed/gap) + 2
	t.Logf("gap %v: %d writes, %d WAL syncs in %v (bound %d)", gap, len(acked), syncs, elapsed.Round(time.Millisecond), bound)
	if syncs > bound {
		t.Errorf("%d WAL syncs in %v with a %v gap, want at most %d", syncs, elapsed, gap, bound)
	}
	if int64(len(acked)) < 2*syncs {
		t.Errorf("%d writes shared %d syncs: fewer than 2 per sync", len(acked), syncs)
	}

	syncs0, elapsed0, acked0 := load(t, -1)
	t.Logf("no gap: %d writes, %d WAL syncs in %v", len(acked0), syncs0, elapsed0.Round(time.Millisecond))
	if syncs0 <= 2*int64(elapsed0/gap+2) {
		t.Errorf("without a gap only %d WAL syncs in %v: the count or the load is off", syncs0, elapsed0)
	}
}
