package chaos

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections from its own port to an MQTT broker and
// reads the client's packets as it forwards them, so that it can cut a
// connection at a chosen moment: right after a PUBLISH on a topic ending in
// Suffix has reached the broker, before any answer (the PUBACK, the cloud's
// ack) can come back. Cut decides, publish by publish; the count of cuts
// made is Cuts.
type Proxy struct {
	Addr   string // where clients connect, 127.0.0.1:port
	Target string // the broker
	Suffix string // e.g. "/up/batch"
	// Cut is called after each matching PUBLISH was forwarded; true closes
	// both sides at once. Nil never cuts.
	Cut func() bool

	cuts  atomic.Int64
	conns atomic.Int64
	ln    net.Listener
	wg    sync.WaitGroup
}

// StartProxy listens on a free port and forwards to target until the test
// ends.
func StartProxy(t testing.TB, target, suffix string, cut func() bool) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), Target: target, Suffix: suffix, Cut: cut, ln: ln}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

// URL returns tcp://Addr.
func (p *Proxy) URL() string { return "tcp://" + p.Addr }

// Cuts returns how many connections the proxy has cut.
func (p *Proxy) Cuts() int { return int(p.cuts.Load()) }

// Conns returns how many connections the proxy has accepted.
func (p *Proxy) Conns() int { return int(p.conns.Load()) }

func (p *Proxy) accept() {
	defer p.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		conns.Add(1)
		go func() {
			defer conns.Done()
			p.serve(c)
		}()
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.Target)
	if err != nil {
		return
	}
	defer server.Close()
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			server.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(client, server) // broker → client, as it is
		closeBoth()
	}()
	p.clientToServer(client, server, closeBoth)
	closeBoth()
	<-done
}

// clientToServer forwards the client's packets one at a time and cuts after
// a matching PUBLISH when Cut says so.
func (p *Proxy) clientToServer(client, server net.Conn, closeBoth func()) {
	r := bufio.NewReader(client)
	for {
		pkt, err := readPacket(r)
		if err != nil {
			return
		}
		if _, err := server.Write(pkt); err != nil {
			return
		}
		if pkt[0]>>4 == 3 && p.Cut != nil && strings.HasSuffix(publishTopic(pkt), p.Suffix) && p.Cut() {
			p.cuts.Add(1)
			closeBoth()
			return
		}
	}
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
