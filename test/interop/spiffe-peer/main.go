// spiffe-peer: one side of an X.509-SVID mTLS handshake made with go-spiffe v2,
// the SPIFFE library SPIRE's workloads use. test/integration/spire-interop.test.ts
// runs it with an SVID minted by SPIRE and with one issued by the operator, to
// show that each accepts the other through the bundles federation delivered.
//
//	spiffe-peer serve   -svid s.pem -key k.pem -bundle TD=roots.pem... -authorize spiffe://... -listen 127.0.0.1:0
//	spiffe-peer connect -svid s.pem -key k.pem -bundle TD=roots.pem... -authorize spiffe://... -addr 127.0.0.1:PORT
//
// The bundle set holds one bundle per trust domain, so a peer is verified only
// against the Roots of its own trust domain (x509bundle.Set). serve prints
// "listening ADDR" once it accepts, then one line per connection: "accepted ID"
// or "refused ERROR". connect prints "connected ID" (the server's SPIFFE ID,
// after reading the server's greeting) and exits 0, or prints the error and exits 1.
package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

type bundleFlags []string

func (b *bundleFlags) String() string     { return strings.Join(*b, ",") }
func (b *bundleFlags) Set(v string) error { *b = append(*b, v); return nil }

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "serve" && os.Args[1] != "connect") {
		fail(errors.New("usage: spiffe-peer serve|connect -svid FILE -key FILE -bundle TD=FILE... -authorize SPIFFEID [-listen ADDR | -addr ADDR]"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	svidPath := fs.String("svid", "", "PEM: the SVID, then its intermediates")
	keyPath := fs.String("key", "", "PEM: the SVID's private key (PKCS#8)")
	authorize := fs.String("authorize", "", "the only SPIFFE ID accepted from the peer")
	listen := fs.String("listen", "127.0.0.1:0", "serve: address to listen on")
	addr := fs.String("addr", "", "connect: address of the server")
	var bundles bundleFlags
	fs.Var(&bundles, "bundle", "TRUSTDOMAIN=FILE (PEM Roots), once per trust domain")
	_ = fs.Parse(os.Args[2:])

	svid, err := x509svid.Load(*svidPath, *keyPath)
	if err != nil {
		fail(err)
	}
	set, err := loadBundleSet(bundles)
	if err != nil {
		fail(err)
	}
	peerID, err := spiffeid.FromString(*authorize)
	if err != nil {
		fail(err)
	}
	if os.Args[1] == "serve" {
		serve(*listen, tlsconfig.MTLSServerConfig(svid, set, tlsconfig.AuthorizeID(peerID)), svid.ID)
		return
	}
	connect(*addr, tlsconfig.MTLSClientConfig(svid, set, tlsconfig.AuthorizeID(peerID)))
}

func loadBundleSet(specs []string) (*x509bundle.Set, error) {
	set := x509bundle.NewSet()
	for _, spec := range specs {
		name, path, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("-bundle %q: want TRUSTDOMAIN=FILE", spec)
		}
		td, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			return nil, err
		}
		b, err := x509bundle.Load(td, path)
		if err != nil {
			return nil, err
		}
		set.Add(b)
	}
	return set, nil
}

func serve(addr string, config *tls.Config, self spiffeid.ID) {
	ln, err := tls.Listen("tcp", addr, config)
	if err != nil {
		fail(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			fail(err)
		}
		go func() {
			defer conn.Close()
			tc := conn.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				fmt.Printf("refused %s\n", oneLine(err))
				return
			}
			id, err := x509svid.IDFromCert(tc.ConnectionState().PeerCertificates[0])
			if err != nil {
				fmt.Printf("refused %s\n", oneLine(err))
				return
			}
			fmt.Printf("accepted %s\n", id)
			fmt.Fprintf(tc, "hello %s from %s\n", id, self)
		}()
	}
}

func connect(addr string, config *tls.Config) {
	conn, err := tls.Dial("tcp", addr, config)
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	// The server writes only after it verified us: reading its line proves both sides accepted.
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		fail(fmt.Errorf("no greeting from the server (did it refuse us?): %w", err))
	}
	id, err := x509svid.IDFromCert(conn.ConnectionState().PeerCertificates[0])
	if err != nil {
		fail(err)
	}
	fmt.Printf("connected %s: %s", id, line)
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "spiffe-peer:", oneLine(err))
	os.Exit(1)
}
