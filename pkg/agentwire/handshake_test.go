package agentwire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"hash/crc32"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testGateway accepts agent "farm1" with token "good".
func testGateway(h *Hello) (*Welcome, *Reject) {
	if h.AgentID != "farm1" || subtle.ConstantTimeCompare([]byte(h.Token), []byte("good")) != 1 {
		return nil, &Reject{Code: RejectBadToken, Message: "unknown agent or wrong token"}
	}
	return &Welcome{SessionID: 42, Extranonce1Prefix: []byte{1, 2, 3, 4}, Extranonce1Size: 6,
		Extranonce2Size: 6, VersionMask: 0x1fffe000, ServerTime: time.Now().UnixNano(),
		ResumedBatch: h.LastAcked}, nil
}

type acceptResult struct {
	hello   *Hello
	welcome *Welcome
	err     error
}

// pipePair returns an agent Conn and a channel with the gateway's Accept
// result over a net.Pipe.
func pipePair(t *testing.T, decide func(*Hello) (*Welcome, *Reject)) (*Conn, *Conn, chan acceptResult) {
	a, g := net.Pipe()
	agent, gw := NewConn(a, Options{}), NewConn(g, Options{})
	t.Cleanup(func() { agent.Close(); gw.Close() })
	res := make(chan acceptResult, 1)
	go func() {
		h, w, err := Accept(gw, decide)
		res <- acceptResult{h, w, err}
	}()
	return agent, gw, res
}

func TestHandshake(t *testing.T) {
	agent, gw, res := pipePair(t, testGateway)
	w, err := Greet(agent, &Hello{AgentID: "farm1", Token: "good", Software: "mineragent/test", Instance: 0x5eed,
		PrevSession: 41, LastAcked: 9})
	require.NoError(t, err)
	r := <-res
	require.NoError(t, r.err)
	require.Equal(t, r.welcome, w)
	require.Equal(t, uint64(9), w.ResumedBatch)
	require.Equal(t, Version, int(r.hello.ProtocolVersion))
	require.Equal(t, "farm1", r.hello.AgentID)

	// The link carries on.
	go func() { _ = gw.WriteMessages(sampleJob()) }()
	m, err := agent.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, sampleJob(), m)
}

func TestHandshakeBadToken(t *testing.T) {
	agent, _, res := pipePair(t, testGateway)
	_, err := Greet(agent, &Hello{AgentID: "farm1", Token: "bad", Instance: 1})
	var rej *Reject
	require.ErrorAs(t, err, &rej)
	require.Equal(t, RejectBadToken, rej.Code)
	require.EqualError(t, err, "agentwire: rejected: bad_token: unknown agent or wrong token")
	r := <-res
	require.ErrorAs(t, r.err, &rej)
	require.Equal(t, RejectBadToken, rej.Code)
	require.Nil(t, r.welcome)
}

func TestHandshakeHelloVersion(t *testing.T) {
	agent, _, res := pipePair(t, testGateway)
	require.NoError(t, agent.WriteMessages(&Hello{ProtocolVersion: 2, AgentID: "farm1", Token: "good", Instance: 1}))
	m, err := agent.ReadMessage()
	require.NoError(t, err)
	rej := m.(*Reject)
	require.Equal(t, RejectVersion, rej.Code)
	require.Contains(t, rej.Message, "gateway speaks protocol version 1, hello says 2")
	require.Error(t, (<-res).err)
}

// TestHandshakeStreamVersion: an agent whose stream is of another version
// gets a Reject it can read, and both sides name both versions.
func TestHandshakeStreamVersion(t *testing.T) {
	a, g := net.Pipe()
	gw := NewConn(g, Options{})
	defer gw.Close()
	defer a.Close()
	res := make(chan error, 1)
	go func() {
		_, _, err := Accept(gw, testGateway)
		res <- err
	}()
	hello := AppendFrame(nil, TypeHello, []byte{2, 5, 'f', 'a', 'r', 'm', '1', 4, 'g', 'o', 'o', 'd', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	hello[2] = 2
	_, err := a.Write(append([]byte{'H', 'A', 2, byte(CodecNone)}, hello...))
	require.NoError(t, err)
	// Read the gateway's answer as a version-2 agent would, then as this
	// package does.
	agent := NewConn(a, Options{})
	_, err = agent.ReadMessage()
	require.NoError(t, err, "same version here: a plain Reject")
	gerr := <-res
	require.ErrorIs(t, gerr, ErrVersion)
	require.Contains(t, gerr.Error(), "peer speaks version 2, this build speaks version 1")
}

func TestHandshakeGarbage(t *testing.T) {
	tests := []struct {
		name  string
		first Message
		raw   []byte
		code  RejectCode
	}{
		{name: "job first", first: sampleJob(), code: RejectProtocol},
		{name: "undecodable hello", raw: AppendFrame(nil, TypeHello, []byte{1, 0}), code: RejectProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agent, _, res := pipePair(t, testGateway)
			go func() {
				if tc.first != nil {
					_ = agent.WriteMessages(tc.first)
				}
			}()
			if tc.raw != nil {
				// A hand-made, sealed unit holding one bad frame.
				unit := appendSeal(bytes.Clone(tc.raw), crc32.Checksum(tc.raw, castagnoli))
				go func() {
					_, _ = agent.rw.Write(append([]byte{'H', 'A', Version, byte(CodecNone)}, unit...))
				}()
			}
			m, err := agent.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, tc.code, m.(*Reject).Code)
			r := <-res
			require.Error(t, r.err)
			require.True(t, IsProtocolError(r.err) || errors.As(r.err, new(*Reject)), "%v", r.err)
		})
	}
}

// TestHandshakeStratumClient: a miner pointed at the agent port by mistake
// gets a clean error on the gateway side.
func TestHandshakeStratumClient(t *testing.T) {
	a, g := net.Pipe()
	gw := NewConn(g, Options{})
	defer gw.Close()
	res := make(chan error, 1)
	go func() {
		_, _, err := Accept(gw, testGateway)
		res <- err
	}()
	go func() { _, _ = a.Write([]byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n")) }()
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := a.Read(buf); err != nil {
				return
			}
		}
	}()
	err := <-res
	require.ErrorIs(t, err, ErrBadMagic)
	require.True(t, IsProtocolError(err))
	a.Close()
}

// TestHandshakeTLS runs the handshake and a batch over TLS on loopback TCP.
func TestHandshakeTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"},
		DNSNames: []string{"gateway.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		gw := NewConn(nc, Options{MaxFrame: 1 << 20})
		defer gw.Close()
		if _, _, err := Accept(gw, testGateway); err != nil {
			done <- err
			return
		}
		m, err := gw.ReadMessage()
		if err != nil {
			done <- err
			return
		}
		b := m.(*ShareBatch)
		done <- gw.WriteMessages(&BatchAck{BatchID: b.BatchID, Results: make([]ResultCode, len(b.Shares))})
	}()

	nc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "gateway.test",
		MinVersion: tls.VersionTLS13})
	require.NoError(t, err)
	agent := NewConn(nc, Options{})
	defer agent.Close()
	w, err := Greet(agent, &Hello{AgentID: "farm1", Token: "good", Instance: 2})
	require.NoError(t, err)
	require.Equal(t, uint64(42), w.SessionID)
	require.NoError(t, agent.WriteMessages(sampleBatch()))
	m, err := agent.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, &BatchAck{BatchID: 7001, Results: make([]ResultCode, 5)}, m)
	require.NoError(t, <-done)
}
