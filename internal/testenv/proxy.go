package testenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy between a test's client and a real server (a broker,
// PostgreSQL) that fails the way networks and servers do, at moments the
// test chooses:
//
//   - SetUp(false) cuts every open connection and refuses new ones, as a
//     server that is down; SetUp(true) lets connections through again;
//   - Cut cuts the open connections and goes on accepting new ones, as a
//     link that drops;
//   - ProxyOptions.CutAfterPublish cuts a connection right after an MQTT
//     PUBLISH has been forwarded to the broker, before any answer can come
//     back, decided publish by publish;
//   - CutAt cuts once at a byte pattern in either direction (PostgreSQL's
//     COMMIT, say), before or after forwarding it.
//
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	opts   ProxyOptions
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	up    bool
	links map[*link]struct{}
	armed []*patternCut

	conns, cuts atomic.Int64
}

// ProxyOptions say how a Proxy reads what it forwards.
type ProxyOptions struct {
	// CutAfterPublish, when set, makes the proxy read the client's stream
	// as MQTT packets, forwarding each whole, and call CutAfterPublish with
	// the topic of each PUBLISH once it has been forwarded: true cuts that
	// connection at once, before the broker's answer reaches the client.
	CutAfterPublish func(topic string) bool
}

// Direction is the way bytes flow through a Proxy.
type Direction int

// The two directions.
const (
	ToTarget Direction = iota // from the client to the server
	ToClient                  // from the server to the client
)

// PatternCut says where CutAt cuts.
type PatternCut struct {
	Dir     Direction
	Pattern []byte
	// After forwards the bytes that complete Pattern and then cuts; without
	// it they are never forwarded.
	After bool
	// Down makes the cut take the proxy down, as SetUp(false) does; without
	// it only the connection that carried Pattern is cut.
	Down bool
}

type patternCut struct {
	PatternCut
	done chan struct{}
}

// link is one relayed connection.
type link struct {
	client, server net.Conn
	once           sync.Once
}

func (l *link) close() {
	l.once.Do(func() {
		l.client.Close()
		l.server.Close()
	})
}

// StartProxy listens on a free port of 127.0.0.1 and forwards every
// connection to target (host:port) until the test ends.
func StartProxy(t testing.TB, target string, o ProxyOptions) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: target, opts: o, ln: ln, up: true, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

// Addr returns where clients connect: 127.0.0.1:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns tcp://Addr.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Conns returns how many connections the proxy has relayed.
func (p *Proxy) Conns() int { return int(p.conns.Load()) }

// Cuts returns how many relayed connections the proxy has cut (by SetUp,
// Cut, CutAfterPublish or CutAt).
func (p *Proxy) Cuts() int { return int(p.cuts.Load()) }

// SetUp lets connections through (true) or cuts the open ones and refuses
// new ones (false).
func (p *Proxy) SetUp(up bool) {
	p.mu.Lock()
	p.up = up
	p.mu.Unlock()
	if !up {
		p.Cut()
	}
}

// Cut cuts every open connection; new ones are relayed as before.
func (p *Proxy) Cut() {
	p.cuts.Add(int64(p.closeAll()))
}

// CutAt arms a cut at the next occurrence of c.Pattern in direction c.Dir,
// on any connection, once. The returned channel is closed when the cut has
// been made.
func (p *Proxy) CutAt(c PatternCut) <-chan struct{} {
	pc := &patternCut{PatternCut: c, done: make(chan struct{})}
	p.mu.Lock()
	p.armed = append(p.armed, pc)
	p.mu.Unlock()
	return pc.done
}

func (p *Proxy) closeAll() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	clear(p.links)
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	return len(links)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		up := p.up
		p.mu.Unlock()
		if !up {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.relay(c)
	}
}

// relay connects client to the target and forwards both ways until either
// side ends or the proxy cuts them.
func (p *Proxy) relay(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		client.Close() // the client sees its connection close, as with a server that is down
		return
	}
	l := &link{client: client, server: server}
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		l.close()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	p.conns.Add(1)
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
		l.close()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pump(l, ToClient, server, client, chunks(server))
		l.close()
	}()
	next := chunks(client)
	if p.opts.CutAfterPublish != nil {
		next = packets(client)
	}
	p.pump(l, ToTarget, client, server, next)
	l.close()
	<-done
}

// pump forwards what next reads from src to dst, cutting where an armed
// PatternCut or CutAfterPublish says.
func (p *Proxy) pump(l *link, dir Direction, src, dst net.Conn, next func() ([]byte, error)) {
	var tail []byte // the end of what went before, for a pattern split between reads
	for {
		unit, err := next()
		if len(unit) > 0 {
			seen := append(tail, unit...)
			cut := p.match(dir, seen)
			if cut != nil && !cut.After {
				p.cutFor(l, cut)
				return
			}
			if _, werr := dst.Write(unit); werr != nil {
				return
			}
			if cut != nil {
				p.cutFor(l, cut)
				return
			}
			if dir == ToTarget && p.opts.CutAfterPublish != nil && unit[0]>>4 == 3 && p.opts.CutAfterPublish(publishTopic(unit)) {
				p.cuts.Add(1)
				l.close()
				return
			}
			tail = keepTail(seen, p.longestPattern())
		}
		if err != nil {
			return
		}
	}
}

// match returns the armed cut whose pattern b holds, disarming it.
func (p *Proxy) match(dir Direction, b []byte) *patternCut {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.armed {
		if c.Dir == dir && bytes.Contains(b, c.Pattern) {
			p.armed = append(p.armed[:i], p.armed[i+1:]...)
			return c
		}
	}
	return nil
}

func (p *Proxy) longestPattern() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.armed {
		n = max(n, len(c.Pattern))
	}
	return n
}

func keepTail(b []byte, pattern int) []byte {
	if pattern <= 1 {
		return nil
	}
	if len(b) > pattern-1 {
		b = b[len(b)-(pattern-1):]
	}
	return append([]byte(nil), b...)
}

func (p *Proxy) cutFor(l *link, c *patternCut) {
	if c.Down {
		p.SetUp(false)
	} else {
		p.cuts.Add(1)
		l.close()
	}
	close(c.done)
}

// chunks reads whatever has arrived.
func chunks(r io.Reader) func() ([]byte, error) {
	buf := make([]byte, 64<<10)
	return func() ([]byte, error) {
		n, err := r.Read(buf)
		return buf[:n], err
	}
}

// packets reads one MQTT control packet at a time.
func packets(r io.Reader) func() ([]byte, error) {
	br := bufio.NewReader(r)
	return func() ([]byte, error) { return readPacket(br) }
}

var errPacket = errors.New("malformed MQTT packet")

// readPacket reads one MQTT control packet: the fixed header byte, the
// remaining length (a varint of up to four bytes) and the rest.
func readPacket(r *bufio.Reader) ([]byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	pkt := []byte{h}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return nil, errPacket
		}
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		pkt = append(pkt, b)
		n += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(pkt, body...), nil
}

// publishTopic returns the topic of a PUBLISH packet, "" if it has none.
func publishTopic(pkt []byte) string {
	i := 1
	for i < len(pkt) && pkt[i]&0x80 != 0 {
		i++
	}
	i++
	if i+2 > len(pkt) {
		return ""
	}
	n := int(binary.BigEndian.Uint16(pkt[i:]))
	if i+2+n > len(pkt) {
		return ""
	}
	return string(pkt[i+2 : i+2+n])
}

// EchoServer runs a TCP server that echoes what it reads, a stand-in for a
// server behind a proxy, until the test ends, and returns its tcp:// URL.
func EchoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return "tcp://" + ln.Addr().String()
}
