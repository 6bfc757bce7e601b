package agentwire

import (
	"errors"
	"fmt"
)

// Greet runs the agent's side of the handshake: it sends h (filling in
// ProtocolVersion) and waits for the gateway's Welcome.
//
// A Reject comes back as the error (a *Reject: errors.As gives the code);
// a gateway of another version gives a *VersionError with its Reject. The
// caller closes the Conn on any error and sets a deadline on the
// underlying connection around the call.
func Greet(c *Conn, h *Hello) (*Welcome, error) {
	h.ProtocolVersion = Version
	if err := c.WriteMessages(h); err != nil {
		return nil, err
	}
	m, err := c.ReadMessage()
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *Welcome:
		return m, nil
	case *Reject:
		return nil, m
	}
	return nil, fmt.Errorf("%w: %s before welcome", ErrType, m.Type())
}

// Accept runs the gateway's side of the handshake: it reads the agent's
// Hello and answers it with decide's Welcome, or with decide's Reject.
//
// Protocol failures are answered before Accept returns: a version
// mismatch with RejectVersion, anything but a Hello first (or an
// undecodable one) with RejectProtocol. decide runs only for a Hello of
// this protocol version; it checks the agent id and token (in constant
// time) and allocates the session and extranonce prefix.
//
// On any error the caller closes the Conn; the error names the reason
// (errors.As to *Reject gives the code sent, when one was sent). The
// returned Hello is valid whenever one was decoded.
func Accept(c *Conn, decide func(*Hello) (*Welcome, *Reject)) (*Hello, *Welcome, error) {
	m, err := c.ReadMessage()
	if err != nil {
		var ve *VersionError
		switch {
		case errors.As(err, &ve):
			_ = c.WriteMessages(&Reject{Code: RejectVersion,
				Message: fmt.Sprintf("gateway speaks protocol version %d, agent sent %d", Version, ve.Peer)})
		case IsProtocolError(err):
			_ = c.WriteMessages(&Reject{Code: RejectProtocol, Message: truncate(err.Error(), MaxReasonLen)})
		}
		return nil, nil, err
	}
	h, ok := m.(*Hello)
	if !ok {
		r := &Reject{Code: RejectProtocol, Message: "first message must be hello, got " + m.Type().String()}
		_ = c.WriteMessages(r)
		return nil, nil, r
	}
	if h.ProtocolVersion != Version {
		r := &Reject{Code: RejectVersion,
			Message: fmt.Sprintf("gateway speaks protocol version %d, hello says %d", Version, h.ProtocolVersion)}
		_ = c.WriteMessages(r)
		return h, nil, r
	}
	w, r := decide(h)
	if r == nil && w == nil {
		r = &Reject{Code: RejectUnavailable}
	}
	if r != nil {
		_ = c.WriteMessages(r)
		return h, nil, r
	}
	if err := c.WriteMessages(w); err != nil {
		return h, nil, err
	}
	return h, w, nil
}

// IsProtocolError reports whether err is the peer's fault (garbage, a
// version mismatch, a broken limit or rule: answer with a Reject and close
// with reason parse_error, or version) rather than a transport failure (a
// timeout, a closed connection, the stream ending: nothing to answer).
func IsProtocolError(err error) bool {
	for _, e := range []error{ErrBadMagic, ErrVersion, ErrTooLarge, ErrShort, ErrTrail, ErrTooLong, ErrInvalid,
		ErrType, ErrNoContext, ErrChecksum, ErrCodec, ErrCorrupt} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
