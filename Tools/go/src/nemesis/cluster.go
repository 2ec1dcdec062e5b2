package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

// member is one server process: its ports, data directory and the running command.
type member struct {
	name       string
	clientPort int
	peerPort   int
	// advertisedPeerPort is the port peers dial: the proxy's when partitions are injected.
	advertisedPeerPort int
	proxy              *proxy
	id                 uint64
	mu                 sync.Mutex
	cmd                *exec.Cmd
	exited             chan struct{}
	paused             bool
	starts             int
}

type cluster struct {
	o       options
	members []*member
	token   string
}

func newCluster(o options) *cluster {
	c := &cluster{o: o, token: fmt.Sprintf("nemesis-%d", o.seed)}
	useProxies := false
	for _, f := range o.faults {
		useProxies = useProxies || f == "partition"
	}
	for i := 0; i < 3; i++ {
		m := &member{name: fmt.Sprintf("n%d", i+1)}
		m.clientPort, m.peerPort = o.basePort+10*i, o.basePort+10*i+1
		m.advertisedPeerPort = m.peerPort
		if useProxies {
			m.advertisedPeerPort = o.basePort + 10*i + 2
			m.proxy = newProxy(i, fmt.Sprintf("127.0.0.1:%d", m.advertisedPeerPort), fmt.Sprintf("127.0.0.1:%d", m.peerPort))
		}
		c.members = append(c.members, m)
	}
	return c
}

func (c *cluster) endpoints() []string {
	var endpoints []string
	for _, m := range c.members {
		endpoints = append(endpoints, fmt.Sprintf("127.0.0.1:%d", m.clientPort))
	}
	return endpoints
}

func (c *cluster) initialCluster() string {
	var parts []string
	for _, m := range c.members {
		parts = append(parts, fmt.Sprintf("%s=http://127.0.0.1:%d", m.name, m.advertisedPeerPort))
	}
	return strings.Join(parts, ",")
}

func (c *cluster) start() error {
	for _, m := range c.members {
		if m.proxy != nil {
			if err := m.proxy.listen(); err != nil {
				return err
			}
		}
	}
	for _, m := range c.members {
		if err := c.launch(m); err != nil {
			return err
		}
	}
	for _, m := range c.members {
		if !c.waitHealthy(m, 30*time.Second) {
			return fmt.Errorf("%s did not become healthy in 30 s (log: %s)", m.name, c.logPath(m))
		}
	}
	return c.learnIDs()
}

func (c *cluster) logPath(m *member) string { return fmt.Sprintf("%s/%s.log", c.o.dir, m.name) }

// launch starts m's process on its data directory (the initial-cluster flags are ignored by both
// servers once the directory holds data).
func (c *cluster) launch(m *member) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", m.clientPort)
	args := []string{
		"--name", m.name, "--data-dir", fmt.Sprintf("%s/%s", c.o.dir, m.name),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", m.peerPort),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", m.advertisedPeerPort),
		"--initial-cluster", c.initialCluster(), "--initial-cluster-token", c.token,
		"--initial-cluster-state", "new",
	}
	if c.o.server == "etcd" {
		args = append(args, "--log-level", "warn")
	}
	args = append(args, c.o.extraFlags...)
	log, err := os.OpenFile(c.logPath(m), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "=== nemesis: start %d at %s\n", m.starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.o.binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %v", m.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited, m.paused = cmd, exited, false
	m.starts++
	m.mu.Unlock()
	return nil
}

func (c *cluster) healthy(m *member) bool {
	client := http.Client{Timeout: 500 * time.Millisecond}
	response, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health", m.clientPort))
	if err != nil {
		return false
	}
	response.Body.Close()
	return response.StatusCode == http.StatusOK
}

func (c *cluster) waitHealthy(m *member, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c.healthy(m) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// learnIDs reads the member IDs, which the proxies use to tell which member opened a peer
// connection (a Statehouse peer connection starts with a hello naming its sender).
func (c *cluster) learnIDs() error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints(), DialTimeout: 5 * time.Second, LogConfig: quietLog()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	response, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("member list: %v", err)
	}
	for _, info := range response.Members {
		for _, m := range c.members {
			if info.Name == m.name {
				m.id = info.ID
			}
		}
	}
	for _, m := range c.members {
		if m.id == 0 {
			return fmt.Errorf("member %s is not in the member list", m.name)
		}
	}
	return nil
}

// kill sends SIGKILL to m and waits for the process to end.
func (c *cluster) kill(m *member) {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	m.mu.Lock()
	m.cmd, m.paused = nil, false
	m.mu.Unlock()
}

func (c *cluster) signal(m *member, s syscall.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.cmd.Process.Signal(s)
		m.paused = s == syscall.SIGSTOP
	}
}

// healAll resumes paused members, restarts killed ones, lifts partitions and waits until every
// member is healthy.
func (c *cluster) healAll() {
	for _, m := range c.members {
		if m.proxy != nil {
			m.proxy.setRule(rule{})
		}
		m.mu.Lock()
		paused, running := m.paused, m.cmd != nil
		m.mu.Unlock()
		if paused {
			c.signal(m, syscall.SIGCONT)
		}
		if !running {
			if err := c.launch(m); err != nil {
				logf("%v", err)
			}
		}
	}
	for _, m := range c.members {
		if !c.waitHealthy(m, 30*time.Second) {
			logf("%s is not healthy 30 s after healing (log: %s)", m.name, c.logPath(m))
		}
	}
}

func (c *cluster) stop() {
	for _, m := range c.members {
		c.signal(m, syscall.SIGCONT)
		c.kill(m)
		if m.proxy != nil {
			m.proxy.close()
		}
	}
}
