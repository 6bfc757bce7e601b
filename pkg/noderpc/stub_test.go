package noderpc_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/noderpc"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// Credentials the stub node accepts. The password is distinctive so tests
// can check it never leaks into error strings.
const (
	stubUser = "pool"
	stubPass = "s3cr3t-Pa55w0rd-xyzzy"
)

// stubRequest is a JSON-RPC request as the stub node received it.
type stubRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`

	// HTTP details the tests check.
	ContentType string `json:"-"`
	HTTPMethod  string `json:"-"`
}

// stubAnswer is what the stub node sends back. Every "$ID" in Body is
// replaced by the request's id.
type stubAnswer struct {
	Status int
	Body   string
	Delay  time.Duration // sleep before answering, cut short by client disconnect
}

// stubNode is an httptest server that plays scripted node answers. It
// listens on a testutil.FreePort port below the ephemeral range.
type stubNode struct {
	srv    *httptest.Server
	answer func(req stubRequest) stubAnswer

	mu   sync.Mutex
	reqs []stubRequest
}

// newStubNode starts a stub node that answers with fn and returns it with a
// client configured with the right credentials.
func newStubNode(t *testing.T, fn func(req stubRequest) stubAnswer) (*stubNode, *noderpc.Client) {
	t.Helper()
	s := &stubNode{answer: fn}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(testutil.FreePort(t))))
	require.NoError(t, err)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	require.NoError(t, s.srv.Listener.Close())
	s.srv.Listener = l
	s.srv.Start()
	t.Cleanup(s.srv.Close)

	c, err := noderpc.New(noderpc.Options{URL: s.srv.URL, User: stubUser, Password: stubPass})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return s, c
}

// serveHTTP checks basic auth like btcd, records the request and plays the
// scripted answer.
func (s *stubNode) serveHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != stubUser || pass != stubPass {
		w.Header().Set("WWW-Authenticate", `Basic realm="stub"`)
		http.Error(w, "401 Unauthorized.", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req stubRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.ContentType = r.Header.Get("Content-Type")
	req.HTTPMethod = r.Method
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()

	a := s.answer(req)
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, strings.ReplaceAll(a.Body, "$ID", string(req.ID)))
}

// requests returns a copy of the requests received so far.
func (s *stubNode) requests() []stubRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stubRequest(nil), s.reqs...)
}

// lastRequest returns the most recent request; the test fails if none.
func (s *stubNode) lastRequest(t *testing.T) stubRequest {
	t.Helper()
	reqs := s.requests()
	require.NotEmpty(t, reqs, "stub node received no request")
	return reqs[len(reqs)-1]
}

// ok is a successful answer with the given JSON result.
func ok(result string) stubAnswer {
	return stubAnswer{Body: `{"result":` + result + `,"error":null,"id":$ID}`}
}

// rpcErr is an RPC error answer with the given HTTP status.
func rpcErr(status, code int, msg string) stubAnswer {
	m, _ := json.Marshal(msg)
	return stubAnswer{Status: status,
		Body: `{"result":null,"error":{"code":` + strconv.Itoa(code) + `,"message":` + string(m) + `},"id":$ID}`}
}

// always answers every request with a.
func always(a stubAnswer) func(stubRequest) stubAnswer {
	return func(stubRequest) stubAnswer { return a }
}
