package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
)

// quietLog keeps the client's retry warnings (one per failed attempt) out of the output.
func quietLog() *zap.Config {
	config := zap.NewProductionConfig()
	config.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	return &config
}

// outcome of one operation as the client saw it.
type outcome int

const (
	// ok: the server answered.
	ok outcome = iota
	// failed: the server refused before proposing; the operation did not take effect.
	failed
	// unknown: a timeout or a lost connection; the operation may or may not have taken effect.
	unknown
)

// operation is one line of the history.
type operation struct {
	client     int
	call, ret  time.Duration // since the workload started; ret is meaningless when unknown
	kind       string        // put, get, cas (compare the value), casv (compare the version)
	key        string
	args       []string
	outcome    outcome
	result     []string // get: value ("-" when absent) and version; cas/casv: true or false
	writeRev   int64    // the revision an acknowledged write created
	writeValue string
	err        string // the error of a failed or unknown operation
}

func (op operation) line() string {
	ret := "-"
	if op.outcome != unknown {
		ret = fmt.Sprint(op.ret.Nanoseconds())
	}
	fields := []string{fmt.Sprint(op.client), fmt.Sprint(op.call.Nanoseconds()), ret, op.kind, op.key}
	fields = append(fields, op.args...)
	switch op.outcome {
	case ok:
		if op.kind == "put" {
			fields = append(fields, "ok")
		} else {
			fields = append(fields, op.result...)
		}
	case failed:
		fields = append(fields, "failed")
	case unknown:
		fields = append(fields, "unknown")
	}
	return strings.Join(fields, " ")
}

// classify sorts an error into failed (refused before it was proposed) or unknown.
func classify(err error) outcome {
	text := err.Error()
	for _, refusal := range []string{
		"etcdserver: no leader", "etcdserver: not leader", "etcdserver: too many requests",
		"there is no address available", "there is no connection available", "etcdserver: request is too large",
	} {
		if strings.Contains(text, refusal) {
			return failed
		}
	}
	return unknown
}

type workload struct {
	o         options
	endpoints []string
	seed      int64
	start     time.Time
	mu        sync.Mutex
	ops       []operation
}

func newWorkload(o options, endpoints []string, seed int64) *workload {
	return &workload{o: o, endpoints: endpoints, seed: seed}
}

func (w *workload) key(i int) string { return fmt.Sprintf("nemesis/k%d", i) }

func (w *workload) newClient() *clientv3.Client {
	for {
		cli, err := clientv3.New(clientv3.Config{Endpoints: w.endpoints, DialTimeout: 2 * time.Second, LogConfig: quietLog()})
		if err == nil {
			return cli
		}
		logf("client: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *workload) run(ctx context.Context) {
	w.start = time.Now()
	var group sync.WaitGroup
	for i := 0; i < w.o.workers; i++ {
		group.Add(1)
		go func(worker int) {
			defer group.Done()
			w.worker(ctx, worker, rand.New(rand.NewSource(w.seed+int64(worker))))
		}(i)
	}
	group.Wait()
}

// known is what a worker last learned about a key, for its compare-and-swaps.
type known struct {
	value   string // "" when absent
	version int64
}

func (w *workload) worker(ctx context.Context, worker int, random *rand.Rand) {
	cli := w.newClient()
	defer cli.Close()
	seen := map[string]known{}
	var local []operation
	for sequence := 0; ctx.Err() == nil; sequence++ {
		key := w.key(random.Intn(w.o.keys))
		value := fmt.Sprintf("w%d-%d", worker, sequence)
		var op operation
		switch choice := random.Intn(4); {
		case choice == 0:
			op = w.put(cli, worker, key, value)
		case choice == 1:
			op = w.get(cli, worker, key)
		default:
			op = w.compareAndSwap(cli, worker, key, value, seen[key], choice == 2)
		}
		switch {
		case op.kind == "get" && op.outcome == ok:
			var version int64
			fmt.Sscan(op.result[1], &version)
			seen[key] = known{value: strings.TrimPrefix(op.result[0], "-"), version: version}
		case op.writeRev != 0:
			seen[key] = known{value: value, version: seen[key].version + 1}
		}
		local = append(local, op)
	}
	w.mu.Lock()
	w.ops = append(w.ops, local...)
	w.mu.Unlock()
}

func (w *workload) since() time.Duration { return time.Since(w.start) }

func (w *workload) finishOp(op *operation, err error) {
	op.ret = w.since()
	if err != nil {
		op.outcome = classify(err)
		op.err = err.Error()
	}
}

func (w *workload) put(cli *clientv3.Client, worker int, key, value string) operation {
	op := operation{client: worker, kind: "put", key: key, args: []string{value}, call: w.since()}
	ctx, cancel := context.WithTimeout(context.Background(), w.o.opTimeout)
	response, err := cli.Put(ctx, key, value)
	cancel()
	w.finishOp(&op, err)
	if err == nil {
		op.writeRev, op.writeValue = response.Header.Revision, value
	}
	return op
}

func (w *workload) get(cli *clientv3.Client, worker int, key string) operation {
	op := operation{client: worker, kind: "get", key: key, call: w.since()}
	ctx, cancel := context.WithTimeout(context.Background(), w.o.opTimeout)
	response, err := cli.Get(ctx, key)
	cancel()
	w.finishOp(&op, err)
	if err == nil {
		if len(response.Kvs) == 0 {
			op.result = []string{"-", "0"}
		} else {
			op.result = []string{string(response.Kvs[0].Value), fmt.Sprint(response.Kvs[0].Version)}
		}
	}
	return op
}

// compareAndSwap writes value if the key still holds what the worker last saw: its value
// (byValue) or its version.
func (w *workload) compareAndSwap(cli *clientv3.Client, worker int, key, value string, last known, byValue bool) operation {
	var compare clientv3.Cmp
	op := operation{client: worker, key: key}
	if byValue {
		op.kind = "cas"
		if last.value == "" {
			op.args = []string{"-", value}
			compare = clientv3.Compare(clientv3.Version(key), "=", 0)
		} else {
			op.args = []string{last.value, value}
			compare = clientv3.Compare(clientv3.Value(key), "=", last.value)
		}
	} else {
		op.kind = "casv"
		op.args = []string{fmt.Sprint(last.version), value}
		compare = clientv3.Compare(clientv3.Version(key), "=", last.version)
	}
	op.call = w.since()
	ctx, cancel := context.WithTimeout(context.Background(), w.o.opTimeout)
	response, err := cli.Txn(ctx).If(compare).Then(clientv3.OpPut(key, value)).Commit()
	cancel()
	w.finishOp(&op, err)
	if err == nil {
		op.result = []string{fmt.Sprint(response.Succeeded)}
		if response.Succeeded {
			op.writeRev, op.writeValue = response.Header.Revision, value
		}
	}
	return op
}

type summary struct {
	ops, ok, failed, unknown, unknownWrites int
	// slow counts the operations that took at least a second; errors the errors by message.
	slow   int
	errors map[string]int
}

func (w *workload) summary() summary {
	s := summary{errors: map[string]int{}}
	for _, op := range w.ops {
		s.ops++
		if op.err != "" {
			s.errors[op.kind+": "+op.err]++
		}
		if op.outcome != unknown && op.ret-op.call >= time.Second {
			s.slow++
		}
		switch op.outcome {
		case ok:
			s.ok++
		case failed:
			s.failed++
		case unknown:
			s.unknown++
			if op.kind != "get" {
				s.unknownWrites++
			}
		}
	}
	return s
}

type finalCheck struct {
	acked, lost, unchecked int
	problems               []string
}

// finish reads every key once more (into the history) and every acknowledged write back at
// its revision: the value must be the one written, created at that revision.
func (w *workload) finish(timeout time.Duration) finalCheck {
	cli := w.newClient()
	defer cli.Close()
	final := w.o.workers
	for i := 0; i < w.o.keys; i++ {
		for attempt := 0; attempt < 20; attempt++ {
			op := w.get(cli, final, w.key(i))
			w.ops = append(w.ops, op)
			if op.outcome == ok {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	var writes []operation
	for _, op := range w.ops {
		if op.outcome == ok && op.writeRev != 0 {
			writes = append(writes, op)
		}
	}
	check := finalCheck{acked: len(writes)}
	var mu sync.Mutex
	var group sync.WaitGroup
	next := make(chan operation)
	for i := 0; i < 8; i++ {
		group.Add(1)
		go func() {
			defer group.Done()
			for op := range next {
				problem, readable := readBack(cli, op, timeout)
				mu.Lock()
				if !readable {
					check.unchecked++
				} else if problem != "" {
					check.lost++
				}
				if problem != "" && len(check.problems) < 10 {
					check.problems = append(check.problems, problem)
				}
				mu.Unlock()
			}
		}()
	}
	for _, op := range writes {
		next <- op
	}
	close(next)
	group.Wait()
	return check
}

func readBack(cli *clientv3.Client, op operation, timeout time.Duration) (problem string, readable bool) {
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		response, err := cli.Get(ctx, op.key, clientv3.WithRev(op.writeRev))
		cancel()
		if err != nil {
			lastErr = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if len(response.Kvs) == 0 || string(response.Kvs[0].Value) != op.writeValue || response.Kvs[0].ModRevision != op.writeRev {
			found := "nothing"
			if len(response.Kvs) > 0 {
				found = fmt.Sprintf("%q (mod revision %d)", response.Kvs[0].Value, response.Kvs[0].ModRevision)
			}
			return fmt.Sprintf("lost: %s of %s = %q acknowledged at revision %d; that revision holds %s", op.kind, op.key, op.writeValue, op.writeRev, found), true
		}
		return "", true
	}
	return fmt.Sprintf("unreadable: %s of %s at revision %d: %v", op.kind, op.key, op.writeRev, lastErr), false
}

func (w *workload) writeHistory(path string) error {
	sort.SliceStable(w.ops, func(i, j int) bool { return w.ops[i].call < w.ops[j].call })
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(file)
	fmt.Fprintln(out, "# nemesis history: client call-ns return-ns op key args... result (see check-history --help)")
	for _, op := range w.ops {
		fmt.Fprintln(out, op.line())
	}
	if err := out.Flush(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}
