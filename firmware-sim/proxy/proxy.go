// Package proxy is the simulator's uplink proxy: a TCP relay between an
// agent and its MQTT broker that the fault timeline can cut, so that a
// scenario's uplink_down really takes the agent's network away.
package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// Proxy relays each connection it accepts to the upstream address. While
// down, it closes the connections it relays and every new one as soon as it
// is accepted, as a network that is gone: the agent sees its connection drop
// and its reconnects fail. Its methods are safe for concurrent use.
type Proxy struct {
	upstream string
	ln       net.Listener
	wg       sync.WaitGroup

	mu     sync.Mutex
	down   bool
	closed bool
	conns  map[net.Conn]struct{}
}

// Listen starts a proxy on addr ("127.0.0.1:0" picks a free port) to
// upstream (tcp://host:port, mqtt://host:port or host:port).
func Listen(addr, upstream string) (*Proxy, error) {
	up := upstream
	for _, scheme := range []string{"tcp://", "mqtt://"} {
		up = strings.TrimPrefix(up, scheme)
	}
	if _, _, err := net.SplitHostPort(up); err != nil {
		return nil, fmt.Errorf("uplink proxy: upstream %q: want tcp://host:port", upstream)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("uplink proxy: %w", err)
	}
	p := &Proxy{upstream: up, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the URL agents connect to instead of the broker's.
func (p *Proxy) Addr() string { return "tcp://" + p.ln.Addr().String() }

// Upstream returns the address relayed to.
func (p *Proxy) Upstream() string { return "tcp://" + p.upstream }

// SetDown cuts the network (true) or brings it back (false). Cutting it
// closes every connection relayed so far.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	var drop []net.Conn
	if down {
		for c := range p.conns {
			drop = append(drop, c)
		}
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.Close()
	}
}

// Down reports whether the network is cut.
func (p *Proxy) Down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.relay(c)
	}
}

// track registers c, and reports false when the network is down or the
// proxy closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down || p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// relay copies both ways between the agent's connection and a new one to
// the broker, until either side closes.
func (p *Proxy) relay(agent net.Conn) {
	defer p.wg.Done()
	defer p.untrack(agent)
	broker, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return // the agent sees its connection close, as with a broker that is down
	}
	if !p.track(broker) {
		broker.Close()
		return
	}
	defer p.untrack(broker)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // ends when either side closes; nothing to report
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(broker, agent)
	go pipe(agent, broker)
	<-done
	<-done
}

// Close stops listening, closes every connection and waits for the relays.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	var drop []net.Conn
	for c := range p.conns {
		drop = append(drop, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range drop {
		c.Close()
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
