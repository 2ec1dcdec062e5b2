// writegap measures how long writes stop when a member fails. Several workers put keys through
// etcd's own Go client (clientv3 3.4) as fast as they can, retrying at once after an error;
// the time of every acknowledged put is recorded. When it receives SIGTERM or SIGINT (or after
// -duration) it stops, reads the kill times the driving script wrote to -kills (one Unix time
// in nanoseconds per line), and prints, for each kill, the longest interval without any
// acknowledged put between the kill and -window after it (measured from the last put
// acknowledged before the kill), then the longest over all kills.
//
//	writegap -endpoints HOST:PORT[,..] -clients 16 -kills FILE [-duration 0] [-window 10s]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	clients := flag.Int("clients", 16, "concurrent writers")
	killsPath := flag.String("kills", "", "file of kill times (Unix nanoseconds, one a line), read at the end")
	duration := flag.Duration("duration", 0, "stop after this long (0: at SIGTERM or SIGINT)")
	window := flag.Duration("window", 10*time.Second, "how long after a kill to look for the gap")
	flag.Parse()

	client, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "writegap:", err)
		os.Exit(1)
	}
	defer client.Close()

	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		if *duration > 0 {
			select {
			case <-signals:
			case <-time.After(*duration):
			}
		} else {
			<-signals
		}
		cancel()
	}()

	var failures int64
	acknowledged := make([][]int64, *clients)
	var group sync.WaitGroup
	for worker := 0; worker < *clients; worker++ {
		group.Add(1)
		go func(worker int) {
			defer group.Done()
			for sequence := 0; ctx.Err() == nil; sequence++ {
				callContext, done := context.WithTimeout(ctx, 10*time.Second)
				_, err := client.Put(callContext, fmt.Sprintf("writegap/%d/%d", worker, sequence%1000), "v")
				done()
				if err == nil {
					acknowledged[worker] = append(acknowledged[worker], time.Now().UnixNano())
				} else if ctx.Err() == nil {
					atomic.AddInt64(&failures, 1)
					time.Sleep(time.Millisecond)
				}
			}
		}(worker)
	}
	group.Wait()

	var times []int64
	for _, worker := range acknowledged {
		times = append(times, worker...)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	fmt.Printf("puts acknowledged=%d failed=%d\n", len(times), failures)
	kills := readKills(*killsPath)
	var longest time.Duration
	for index, kill := range kills {
		gap := gapAfter(times, kill, kill+int64(*window))
		if gap > longest {
			longest = gap
		}
		fmt.Printf("kill %d: longest write gap %.0f ms\n", index+1, float64(gap)/1e6)
	}
	if len(kills) > 0 {
		fmt.Printf("longest write gap over %d kills: %.0f ms\n", len(kills), float64(longest)/1e6)
	}
}

// gapAfter returns the longest interval without an acknowledged put that ends after `from` and
// starts before `to`, counting from the last put acknowledged before `from`; up to `to` when no
// put was acknowledged after it. The load must run past `to`.
func gapAfter(times []int64, from, to int64) time.Duration {
	start := sort.Search(len(times), func(i int) bool { return times[i] >= from })
	previous := from
	if start > 0 {
		previous = times[start-1]
	}
	var longest int64
	for _, t := range times[start:] {
		if t-previous > longest {
			longest = t - previous
		}
		previous = t
		if t > to {
			break
		}
	}
	if previous < to && to-previous > longest {
		// No put was acknowledged after the window's end (writes never resumed).
		longest = to - previous
	}
	return time.Duration(longest)
}

func readKills(path string) []int64 {
	if path == "" {
		return nil
	}
	file, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writegap:", err)
		return nil
	}
	defer file.Close()
	var kills []int64
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if value, err := strconv.ParseInt(strings.TrimSpace(scanner.Text()), 10, 64); err == nil {
			kills = append(kills, value)
		}
	}
	return kills
}
