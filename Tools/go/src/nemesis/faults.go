package main

import (
	"math/rand"
	"syscall"
	"time"
)

// nemesis injects one fault per interval, each on a member drawn at random, and undoes it before
// the next.
type nemesis struct {
	c                         *cluster
	o                         options
	random                    *rand.Rand
	kills, pauses, partitions int
}

func newNemesis(c *cluster, o options, random *rand.Rand) *nemesis {
	return &nemesis{c: c, o: o, random: random}
}

// between draws a duration uniformly in [low, high).
func (n *nemesis) between(low, high time.Duration) time.Duration {
	if high <= low {
		return low
	}
	return low + time.Duration(n.random.Int63n(int64(high-low)))
}

func (n *nemesis) run() {
	start := time.Now()
	for i := 0; ; i++ {
		if n.o.faultCount > 0 && i >= n.o.faultCount {
			break
		}
		if n.o.faultCount == 0 && time.Since(start)+n.o.interval > n.o.duration {
			break
		}
		next := start.Add(time.Duration(i+1) * n.o.interval)
		if len(n.o.faults) > 0 {
			n.inject(n.o.faults[n.random.Intn(len(n.o.faults))], next)
		}
		time.Sleep(time.Until(next))
	}
	if n.o.faultCount == 0 {
		time.Sleep(time.Until(start.Add(n.o.duration)))
	} else {
		// One more quiet interval, so that the last fault's effects show in the history.
		time.Sleep(n.o.interval)
	}
}

// inject applies fault to a random member and undoes it before next: a killed member is
// restarted after a random downtime (at once with -kill-downtime 0, as the availability drill
// asks), a paused one resumed, a partition healed.
func (n *nemesis) inject(fault string, next time.Time) {
	m := n.c.members[n.random.Intn(len(n.c.members))]
	room := time.Until(next)
	switch fault {
	case "kill":
		n.kills++
		logf("kill -9 %s", m.name)
		n.c.kill(m)
		if limit := minDuration(n.o.downtime, room/2); limit > 0 {
			down := n.between(0, limit)
			logf("%s stays down for %v", m.name, down.Round(time.Millisecond))
			time.Sleep(down)
		}
		if err := n.c.launch(m); err != nil {
			logf("restarting %s: %v", m.name, err)
		}
	case "pause":
		n.pauses++
		hold := n.between(room/8, room*3/4)
		logf("SIGSTOP %s for %v", m.name, hold.Round(time.Millisecond))
		n.c.signal(m, syscall.SIGSTOP)
		time.Sleep(hold)
		n.c.signal(m, syscall.SIGCONT)
	case "partition":
		n.partitions++
		r := rule{mode: []linkMode{cut, blackhole, delay}[n.random.Intn(3)], isolated: m.proxy.index, isolatedID: m.id}
		if r.mode == delay {
			r.latency = n.between(20*time.Millisecond, 300*time.Millisecond)
		}
		hold := n.between(room/8, room*3/4)
		logf("partition %s from its peers (%v, latency %v) for %v", m.name, r.mode, r.latency, hold.Round(time.Millisecond))
		for _, other := range n.c.members {
			other.proxy.setRule(r)
		}
		time.Sleep(hold)
		for _, other := range n.c.members {
			other.proxy.setRule(rule{})
		}
	}
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
