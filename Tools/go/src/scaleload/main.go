// scaleload writes -keys distinct keys (-prefix followed by a zero-padded index, from -start)
// with values of -val bytes through etcd's own Go client (clientv3 3.4), from -clients concurrent
// writers that share the index range, and prints one line: the puts, the failed puts, the
// elapsed time, puts per second and the p50 and p99 latency. A failed put is counted and not
// retried, so "errs=0" means every key was written exactly once.
//
//	scaleload -endpoints HOST:PORT[,..] -keys 1000000 -clients 32 -val 1024 [-prefix scale/] [-start 0]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	keys := flag.Int64("keys", 1000000, "distinct keys to write")
	start := flag.Int64("start", 0, "index of the first key")
	clients := flag.Int("clients", 32, "concurrent writers")
	valueSize := flag.Int("val", 1024, "value size in bytes")
	prefix := flag.String("prefix", "scale/", "key prefix")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of one put")
	flag.Parse()

	client, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaleload:", err)
		os.Exit(1)
	}
	defer client.Close()

	value := strings.Repeat("v", *valueSize)
	var next, failed int64 = *start - 1, 0
	end := *start + *keys
	latencies := make([][]time.Duration, *clients)
	var firstError atomic.Value
	var group sync.WaitGroup
	began := time.Now()
	for c := 0; c < *clients; c++ {
		group.Add(1)
		go func(c int) {
			defer group.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= end {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				t := time.Now()
				_, err := client.Put(ctx, fmt.Sprintf("%s%010d", *prefix, i), value)
				cancel()
				latencies[c] = append(latencies[c], time.Since(t))
				if err != nil {
					atomic.AddInt64(&failed, 1)
					firstError.CompareAndSwap(nil, err.Error())
				}
			}
		}(c)
	}
	group.Wait()
	elapsed := time.Since(began)
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	n := len(all)
	if n == 0 {
		fmt.Println("n=0")
		return
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("n=%d errs=%d elapsed=%.2fs ops/s=%.0f p50=%.2fms p99=%.2fms\n", n, failed, elapsed.Seconds(),
		float64(n)/elapsed.Seconds(), ms(all[n/2]), ms(all[n*99/100]))
	if e := firstError.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "scaleload: first error:", e)
	}
}
