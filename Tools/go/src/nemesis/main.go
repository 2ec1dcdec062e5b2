// Command nemesis runs a three-member cluster of Statehouse or etcd as real processes, drives it
// with etcd's own Go client (clientv3 3.4) while it injects faults, and writes the client history
// for check-history (the project's linearizability checker).
//
// Faults: kill (SIGKILL, then a restart on the same data directory), pause (SIGSTOP, then
// SIGCONT) and partition (one member cut off from both peers by the fault-injecting TCP proxies
// in front of every peer port: connections cut, blackholed or delayed). After the last fault
// every member is healed, every key is read once more, and every acknowledged write is read back
// at the revision it was written in.
//
// Usage (see `nemesis -h`):
//
//	nemesis -server statehouse -binary .build/release/statehouse -dir /tmp/chaos \
//	    -duration 60s -faults kill,pause,partition -history /tmp/chaos/history.txt
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type options struct {
	server     string
	binary     string
	dir        string
	basePort   int
	duration   time.Duration
	workers    int
	keys       int
	opTimeout  time.Duration
	faults     []string
	interval   time.Duration
	faultCount int
	history    string
	seed       int64
	extraFlags []string
	downtime   time.Duration
}

func parseOptions() options {
	var o options
	var faults, extra string
	flag.StringVar(&o.server, "server", "statehouse", "the members to run: statehouse or etcd")
	flag.StringVar(&o.binary, "binary", ".build/release/statehouse", "the server binary (etcd: the etcd binary)")
	flag.StringVar(&o.dir, "dir", "", "the working directory for data, logs and the history (default: a new one in /tmp)")
	flag.IntVar(&o.basePort, "base-port", 24000, "member i (0-2) serves clients on base+10i, peers on base+10i+1, its peer proxy on base+10i+2; keep it below the ephemeral port range (32768 and up), where outgoing connections could hold a port")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long the workload runs when -fault-count is 0")
	flag.IntVar(&o.workers, "workers", 8, "concurrent client workers")
	flag.IntVar(&o.keys, "keys", 3, "keys the workers share")
	flag.DurationVar(&o.opTimeout, "op-timeout", 2*time.Second, "deadline of every operation; an operation past it has an unknown outcome")
	flag.StringVar(&faults, "faults", "kill,pause,partition", "comma-separated faults drawn at random: kill, pause, partition (empty: none)")
	flag.DurationVar(&o.interval, "interval", 4*time.Second, "time from one fault to the next")
	flag.IntVar(&o.faultCount, "fault-count", 0, "inject exactly this many faults, one per interval, then stop (0: until -duration)")
	flag.DurationVar(&o.downtime, "kill-downtime", -1, "the longest a killed member stays down, drawn uniformly (default: half the time to the next fault; 0: restart at once)")
	flag.StringVar(&o.history, "history", "", "where to write the history (default: DIR/history.txt)")
	flag.Int64Var(&o.seed, "seed", 0, "seed of the fault and workload choices (0: from the clock)")
	flag.StringVar(&extra, "server-flags", "", "extra flags for every member, space-separated")
	flag.Parse()
	if o.server != "statehouse" && o.server != "etcd" {
		fatalf("-server must be statehouse or etcd, not %q", o.server)
	}
	for _, f := range strings.Split(faults, ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case "kill", "pause", "partition":
			o.faults = append(o.faults, f)
		default:
			fatalf("unknown fault %q (kill, pause, partition)", f)
		}
	}
	if o.workers < 1 || o.keys < 1 {
		fatalf("-workers and -keys must be at least 1")
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	if o.dir == "" {
		dir, err := os.MkdirTemp("", "nemesis-")
		if err != nil {
			fatalf("%v", err)
		}
		o.dir = dir
	}
	if o.history == "" {
		o.history = o.dir + "/history.txt"
	}
	o.extraFlags = strings.Fields(extra)
	if o.downtime < 0 {
		o.downtime = o.interval / 2
	}
	return o
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "nemesis: "+format+"\n", args...)
	os.Exit(2)
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s nemesis: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func main() {
	o := parseOptions()
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		fatalf("%v", err)
	}
	random := rand.New(rand.NewSource(o.seed))
	logf("seed %d, %s members in %s", o.seed, o.server, o.dir)

	c := newCluster(o)
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupted
		c.stop()
		os.Exit(130)
	}()
	if err := c.start(); err != nil {
		c.stop()
		fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := newWorkload(o, c.endpoints(), random.Int63())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()

	n := newNemesis(c, o, random)
	n.run()
	cancel()
	<-done
	c.healAll()
	final := w.finish(o.opTimeout)
	c.stop()

	if err := w.writeHistory(o.history); err != nil {
		fatalf("writing the history: %v", err)
	}
	s := w.summary()
	fmt.Printf("server=%s ops=%d ok=%d failed=%d unknown=%d unknown-writes=%d kills=%d pauses=%d partitions=%d acked-writes=%d lost-writes=%d history=%s\n",
		o.server, s.ops, s.ok, s.failed, s.unknown, s.unknownWrites, n.kills, n.pauses, n.partitions, final.acked, final.lost, o.history)
	logf("operations answered after 1 s or more: %d", s.slow)
	for message, count := range s.errors {
		logf("%6d × %s", count, message)
	}
	for _, line := range final.problems {
		fmt.Println("  " + line)
	}
	if final.lost > 0 || final.unchecked > 0 {
		fmt.Printf("verdict: acknowledged writes lost or unreadable (%d lost, %d unreadable)\n", final.lost, final.unchecked)
		os.Exit(1)
	}
}
