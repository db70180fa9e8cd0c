// Package s3proxy puts a fault-injecting HTTP proxy in front of an
// S3-compatible server on loopback, for end-to-end tests: it can hold an
// upload part-way (so a runner can be killed mid-write) and make the
// storage unreachable (every connection is reset). Requests pass through
// unchanged otherwise, Host header included, so AWS Signature V4 still
// verifies.
package s3proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// Proxy is a running proxy.
type Proxy struct {
	// Endpoint is http://ADDR:PORT, to use in place of the server's.
	Endpoint string

	listener net.Listener
	server   *http.Server
	down     atomic.Bool
	resets   atomic.Int64

	mu   sync.Mutex
	hold *Hold
}

// Start proxies to target (http://host:port), listening on loopback.
func Start(target string) (*Proxy, error) { return StartAt("127.0.0.1:0", target) }

// StartAt proxies to target, listening on addr (host:port): make e2e-node
// listens on the pod network's gateway, which containers can reach.
func StartAt(addr, target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, errors.New("s3proxy: target must be http://host:port, got " + target)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{Endpoint: "http://" + ln.Addr().String()}
	p.listener = &downListener{Listener: ln, p: p}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // signed by the client
		},
		// A client that went away mid-request is expected here.
		ErrorLog: nil,
	}
	p.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := p.currentHold(); h != nil && h.match(r) {
			r.Body = h.wrap(r)
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.server.Serve(p.listener) }()
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() error { return p.server.Close() }

// SetDown makes the storage unreachable (true): every new connection is
// reset at once, as when the service or the network is gone. Connections
// already open are closed too.
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	// Disabling keep-alives closes idle connections, which would
	// otherwise still work.
	p.server.SetKeepAlivesEnabled(!down)
}

// Resets counts connections refused while down.
func (p *Proxy) Resets() int64 { return p.resets.Load() }

// Hold holds the request bodies of matching requests after half their
// bytes, until Release. Only one Hold is active at a time.
type Hold struct {
	match   func(*http.Request) bool
	held    chan *http.Request
	release chan struct{}
	once    sync.Once
}

// HoldUploads holds the body of every request match accepts (for example
// PUTs of a model) and reports each on Held.
func (p *Proxy) HoldUploads(match func(*http.Request) bool) *Hold {
	h := &Hold{match: match, held: make(chan *http.Request, 16), release: make(chan struct{})}
	p.mu.Lock()
	p.hold = h
	p.mu.Unlock()
	return h
}

// Held receives each request as its body is held.
func (h *Hold) Held() <-chan *http.Request { return h.held }

// Release lets held and future bodies through; the proxy forgets the hold.
func (h *Hold) Release(p *Proxy) {
	h.once.Do(func() { close(h.release) })
	p.mu.Lock()
	if p.hold == h {
		p.hold = nil
	}
	p.mu.Unlock()
}

func (p *Proxy) currentHold() *Hold {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hold
}

// wrap returns a body that passes half of the request's bytes (at least
// one) and then blocks until the hold is released or the client goes away.
func (h *Hold) wrap(r *http.Request) io.ReadCloser {
	half := r.ContentLength / 2
	if half <= 0 {
		half = 1
	}
	return &heldBody{body: r.Body, left: half, h: h, req: r, ctx: r.Context()}
}

type heldBody struct {
	body     io.ReadCloser
	left     int64
	h        *Hold
	req      *http.Request
	ctx      context.Context
	reported bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		if !b.reported {
			b.reported = true
			select {
			case b.h.held <- b.req:
			default:
			}
		}
		select {
		case <-b.h.release:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
		return b.body.Read(p)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *heldBody) Close() error { return b.body.Close() }

// downListener resets connections while the proxy is down.
type downListener struct {
	net.Listener
	p *Proxy
}

func (l *downListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.p.down.Load() {
			return c, err
		}
		l.p.resets.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		_ = c.Close()
	}
}
