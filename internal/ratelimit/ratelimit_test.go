package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestBucketThrottlesOnAverage(t *testing.T) {
	b := New(1000) // 1000 units/s, burst 1000
	ctx := context.Background()
	start := time.Now()
	for range 30 {
		if err := b.Wait(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	// 3000 units: the first 1000 are the burst, the rest take >= 2s.
	if d := time.Since(start); d < 1900*time.Millisecond || d > 4*time.Second {
		t.Fatalf("3000 units at 1000/s with a 1000 burst took %v", d)
	}
}

func TestUnlimitedAndCancel(t *testing.T) {
	var nilBucket *Bucket
	if err := nilBucket.Wait(context.Background(), 1e9); err != nil {
		t.Fatal(err)
	}
	if err := New(0).Wait(context.Background(), 1e9); err != nil {
		t.Fatal(err)
	}
	b := New(10)
	gone, stop := context.WithCancel(context.Background())
	stop()
	b.Wait(gone, 1000) // deep in debt (~99s to repay); returns at once
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := b.Wait(ctx, 1); err == nil || time.Since(start) > 5*time.Second {
		t.Fatal("wait in debt returned before the context ended")
	}
}
