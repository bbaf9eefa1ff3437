package metrics

import (
	"testing"
	"time"
)

// BenchmarkProxyObserve is what counting costs one proxy request: a
// counter and a histogram bucket, both atomic, found without a map.
func BenchmarkProxyObserve(b *testing.B) {
	p := newProxy()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Observe("init", "3600", 300*time.Microsecond)
		}
	})
}
