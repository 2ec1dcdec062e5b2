package main

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"
)

// linkMode is what a proxy does to the connections a partition covers.
type linkMode int

const (
	// pass forwards bytes as they come.
	pass linkMode = iota
	// cut closes the connections and every new one at once (the peer sees a reset).
	cut
	// blackhole stops forwarding in both directions while keeping the connections open: bytes
	// wait in the proxy and the kernels' buffers, as a dropped link's do in TCP retransmission,
	// and flow again when the partition heals (never dropped mid-stream, which TCP cannot do).
	blackhole
	// delay forwards every chunk after a fixed delay.
	delay
)

func (m linkMode) String() string {
	return [...]string{"pass", "cut", "blackhole", "delay"}[m]
}

// rule is a proxy's current partition: connections into the isolated member (when the proxy
// fronts it) or opened by it are treated with mode.
type rule struct {
	mode       linkMode
	isolated   int    // index of the isolated member
	isolatedID uint64 // its member ID, found in the hello of the connections it opens
	latency    time.Duration
}

// proxy forwards TCP connections from listen to target: one in front of each member's peer port.
type proxy struct {
	index    int
	address  string
	target   string
	listener net.Listener
	mu       sync.Mutex
	changed  *sync.Cond
	current  rule
	links    map[*link]struct{}
	closed   bool
}

// link is one forwarded connection.
type link struct {
	inbound, outbound net.Conn
	hello             []byte
	closed            bool
}

func newProxy(index int, address, target string) *proxy {
	p := &proxy{index: index, address: address, target: target, links: map[*link]struct{}{}}
	p.changed = sync.NewCond(&p.mu)
	return p
}

func (p *proxy) listen() error {
	listener, err := net.Listen("tcp", p.address)
	if err != nil {
		return err
	}
	p.listener = listener
	go p.accept()
	return nil
}

func (p *proxy) accept() {
	for {
		inbound, err := p.listener.Accept()
		if err != nil {
			return
		}
		go p.serve(inbound)
	}
}

// readHello reads a Statehouse peer connection's first frame (a 4-byte big-endian length and the
// payload), which names the sender. Anything else is forwarded as it is.
func readHello(conn net.Conn) ([]byte, error) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	prefix := make([]byte, 4)
	if _, err := io.ReadFull(conn, prefix); err != nil {
		return nil, err
	}
	length := binary.BigEndian.Uint32(prefix)
	if length > 256 {
		return prefix, nil
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(conn, payload); err != nil {
		return nil, err
	}
	return append(prefix, payload...), nil
}

// containsID reports whether hello holds id as 8 big-endian bytes.
func containsID(hello []byte, id uint64) bool {
	var encoded [8]byte
	binary.BigEndian.PutUint64(encoded[:], id)
	for i := 0; i+8 <= len(hello); i++ {
		if string(hello[i:i+8]) == string(encoded[:]) {
			return true
		}
	}
	return false
}

// modeLocked is what the current rule does to l.
func (p *proxy) modeLocked(l *link) linkMode {
	r := p.current
	if r.mode == pass {
		return pass
	}
	if p.index == r.isolated || containsID(l.hello, r.isolatedID) {
		return r.mode
	}
	return pass
}

func (p *proxy) serve(inbound net.Conn) {
	hello, err := readHello(inbound)
	if err != nil {
		inbound.Close()
		return
	}
	l := &link{inbound: inbound, hello: hello}
	p.mu.Lock()
	if p.closed || p.modeLocked(l) == cut {
		p.mu.Unlock()
		inbound.Close()
		return
	}
	p.mu.Unlock()
	outbound, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		inbound.Close()
		return
	}
	l.outbound = outbound
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		inbound.Close()
		outbound.Close()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	go p.pump(l, inbound, outbound, hello)
	go p.pump(l, outbound, inbound, nil)
}

// gate waits until l may forward a chunk under the current rule; false means l is closed.
func (p *proxy) gate(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if l.closed {
			return false
		}
		switch p.modeLocked(l) {
		case pass:
			return true
		case cut:
			p.closeLocked(l)
			return false
		case delay:
			latency := p.current.latency
			p.mu.Unlock()
			time.Sleep(latency)
			p.mu.Lock()
			return !l.closed
		case blackhole:
			p.changed.Wait()
		}
	}
}

func (p *proxy) pump(l *link, from, to net.Conn, first []byte) {
	if first != nil {
		if !p.gate(l) {
			return
		}
		if _, err := to.Write(first); err != nil {
			p.closeLink(l)
			return
		}
	}
	buffer := make([]byte, 64<<10)
	for {
		n, err := from.Read(buffer)
		if n > 0 {
			if !p.gate(l) {
				return
			}
			if _, werr := to.Write(buffer[:n]); werr != nil {
				p.closeLink(l)
				return
			}
		}
		if err != nil {
			p.closeLink(l)
			return
		}
	}
}

func (p *proxy) closeLink(l *link) {
	p.mu.Lock()
	p.closeLocked(l)
	p.mu.Unlock()
}

func (p *proxy) closeLocked(l *link) {
	if l.closed {
		return
	}
	l.closed = true
	l.inbound.Close()
	l.outbound.Close()
	delete(p.links, l)
	p.changed.Broadcast()
}

// setRule replaces the partition; cut closes the connections it covers at once.
func (p *proxy) setRule(r rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.current = r
	if r.mode == cut {
		for l := range p.links {
			if p.modeLocked(l) == cut {
				p.closeLocked(l)
			}
		}
	}
	p.changed.Broadcast()
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.current = rule{}
	for l := range p.links {
		p.closeLocked(l)
	}
	p.mu.Unlock()
	if p.listener != nil {
		p.listener.Close()
	}
}
