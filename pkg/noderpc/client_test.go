package noderpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/noderpc"
	"github.com/hashgate/hashgate/pkg/testutil"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		opts     noderpc.Options
		wantURL  string
		wantErr  string
		noSecret string // must not appear in the error
	}{
		{name: "bare host:port", opts: noderpc.Options{URL: "127.0.0.1:18443"}, wantURL: "http://127.0.0.1:18443/"},
		{name: "bare hostname:port", opts: noderpc.Options{URL: "localhost:8332"}, wantURL: "http://localhost:8332/"},
		{name: "http", opts: noderpc.Options{URL: "http://node:8332"}, wantURL: "http://node:8332/"},
		{name: "https with wallet path", opts: noderpc.Options{URL: "https://node:8332/wallet/pool"}, wantURL: "https://node:8332/wallet/pool"},
		{name: "credentials stripped", opts: noderpc.Options{URL: "http://u:hunter2@node:8332"}, wantURL: "http://node:8332/"},
		{name: "empty", opts: noderpc.Options{URL: "  "}, wantErr: "empty node URL"},
		{name: "wrong scheme", opts: noderpc.Options{URL: "ftp://node:21"}, wantErr: `scheme "ftp"`},
		{name: "no host", opts: noderpc.Options{URL: "http:///path"}, wantErr: "no host"},
		{name: "unparsable keeps password secret", opts: noderpc.Options{URL: "http://u:hunter2@[::1"}, wantErr: "invalid node URL", noSecret: "hunter2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := noderpc.New(tc.opts)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				if tc.noSecret != "" {
					require.NotContains(t, err.Error(), tc.noSecret)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantURL, c.URL())
		})
	}
}

func TestNewCredentialsFromURL(t *testing.T) {
	stub, _ := newStubNode(t, always(ok(`7`)))
	// The stub's URL is http://127.0.0.1:port; embed the credentials.
	url := strings.Replace(stub.srv.URL, "http://", "http://"+stubUser+":"+stubPass+"@", 1)
	c, err := noderpc.New(noderpc.Options{URL: url})
	require.NoError(t, err)
	require.NotContains(t, c.URL(), stubPass)
	n, err := c.GetBlockCount(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(7), n)
}

// errKind classifies an error the way callers branch on it.
type errKind int

const (
	kindNone errKind = iota
	kindRPC
	kindUnauthorized
	kindTransport
)

func classify(err error) errKind {
	var re *noderpc.RPCError
	switch {
	case err == nil:
		return kindNone
	case errors.As(err, &re):
		return kindRPC
	case errors.Is(err, noderpc.ErrUnauthorized):
		return kindUnauthorized
	case noderpc.IsTransport(err):
		return kindTransport
	}
	return -1
}

func TestCallErrorModel(t *testing.T) {
	tests := []struct {
		name     string
		answer   stubAnswer
		wrongPwd bool
		kind     errKind
		code     int    // for kindRPC
		contains string // substring of the error text
		want     json.RawMessage
	}{
		{name: "success", answer: ok(`{"a":1}`), kind: kindNone, want: json.RawMessage(`{"a":1}`)},
		{name: "success btcd trailing newline", answer: stubAnswer{Body: `{"result":5,"error":null,"id":$ID}` + "\n"}, kind: kindNone, want: json.RawMessage(`5`)},
		{name: "success jsonrpc 2.0 envelope", answer: stubAnswer{Body: `{"jsonrpc":"2.0","result":"x","id":$ID}`}, kind: kindNone, want: json.RawMessage(`"x"`)},
		{name: "rpc error with HTTP 500 (Core)", answer: rpcErr(500, -8, "getblocktemplate must be called with the segwit rule set"), kind: kindRPC, code: -8, contains: "getblockcount: rpc error -8: getblocktemplate must be called"},
		{name: "rpc error with HTTP 200 (btcd)", answer: rpcErr(200, -5, "Block not found"), kind: kindRPC, code: noderpc.CodeBlockNotFound, contains: "Block not found"},
		{name: "method not found with HTTP 404 (Core)", answer: rpcErr(404, -32601, "Method not found"), kind: kindRPC, code: noderpc.CodeMethodNotFound},
		{name: "rpc error answering id null", answer: stubAnswer{Status: 500, Body: `{"result":null,"error":{"code":-32700,"message":"Parse error"},"id":null}`}, kind: kindRPC, code: -32700},
		{name: "rpc error as bare string", answer: stubAnswer{Body: `{"result":null,"error":"boom","id":$ID}`}, kind: kindRPC, code: noderpc.CodeMisc, contains: "boom"},
		{name: "401 wrong password", answer: ok(`1`), wrongPwd: true, kind: kindUnauthorized, contains: "http 401"},
		{name: "403", answer: stubAnswer{Status: 403, Body: "Forbidden"}, kind: kindUnauthorized, contains: "http 403"},
		{name: "503 plain text", answer: stubAnswer{Status: 503, Body: "Work queue depth exceeded"}, kind: kindTransport, contains: "http status 503"},
		{name: "500 html", answer: stubAnswer{Status: 500, Body: "<html>oops</html>"}, kind: kindTransport, contains: "http status 500"},
		{name: "500 json without error member", answer: stubAnswer{Status: 500, Body: `{"result":1,"error":null,"id":$ID}`}, kind: kindTransport, contains: "http status 500"},
		{name: "garbage body", answer: stubAnswer{Body: "\x00\x01garbage"}, kind: kindTransport, contains: "invalid json-rpc response"},
		{name: "empty body", answer: stubAnswer{Body: ""}, kind: kindTransport, contains: "invalid json-rpc response"},
		{name: "truncated json", answer: stubAnswer{Body: `{"result":{"height":1,"bits":"2`}, kind: kindTransport, contains: "invalid json-rpc response"},
		{name: "wrong id", answer: stubAnswer{Body: `{"result":1,"error":null,"id":999999}`}, kind: kindTransport, contains: "want"},
		{name: "missing id", answer: stubAnswer{Body: `{"result":1,"error":null}`}, kind: kindTransport},
		{name: "string id", answer: stubAnswer{Body: `{"result":1,"error":null,"id":"abc"}`}, kind: kindTransport},
		{name: "malformed error member", answer: stubAnswer{Body: `{"result":null,"error":[1,2],"id":$ID}`}, kind: kindTransport, contains: "malformed error member"},
		{name: "body over size cap", answer: ok(`"` + strings.Repeat("ab", 1024) + `"`), kind: kindTransport, contains: "response larger than 1024 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, c := newStubNode(t, always(tc.answer))
			noderpc.SetMaxResponseBytes(c, 1024)
			if tc.wrongPwd {
				var err error
				c, err = noderpc.New(noderpc.Options{URL: stub.srv.URL, User: stubUser, Password: stubPass + "-wrong"})
				require.NoError(t, err)
			}

			var got json.RawMessage
			err := c.Call(context.Background(), "getblockcount", nil, &got)
			require.Equal(t, tc.kind, classify(err), "error: %v", err)
			if err != nil {
				require.Contains(t, err.Error(), "getblockcount", "error must name the method")
				require.NotContains(t, err.Error(), stubPass, "error leaks the password")
				require.Equal(t, tc.kind == kindTransport, noderpc.IsTransport(err))
			}
			if tc.contains != "" {
				require.ErrorContains(t, err, tc.contains)
			}
			if tc.kind == kindRPC {
				var re *noderpc.RPCError
				require.ErrorAs(t, err, &re)
				require.Equal(t, tc.code, re.Code)
				require.Equal(t, "getblockcount", re.Method)
				require.True(t, noderpc.IsRPCCode(err, tc.code))
			}
			if tc.want != nil {
				require.JSONEq(t, string(tc.want), string(got))
			}
		})
	}
}

func TestCallRequestFormat(t *testing.T) {
	tests := []struct {
		name       string
		params     []any
		wantParams string
	}{
		{name: "nil params become []", params: nil, wantParams: `[]`},
		{name: "mixed params", params: []any{"00ff", 0, true, map[string]any{"mode": "template"}}, wantParams: `["00ff",0,true,{"mode":"template"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, c := newStubNode(t, always(ok(`null`)))
			require.NoError(t, c.Call(context.Background(), "somemethod", tc.params, nil))
			req := stub.lastRequest(t)
			require.Equal(t, "1.0", req.JSONRPC)
			require.Equal(t, "somemethod", req.Method)
			require.JSONEq(t, tc.wantParams, string(req.Params))
			require.Equal(t, http.MethodPost, req.HTTPMethod)
			require.Equal(t, "application/json", req.ContentType)
			_, err := strconv.ParseUint(string(req.ID), 10, 64)
			require.NoError(t, err, "id must be a JSON number, got %s", req.ID)
		})
	}
}

func TestCallNullResultLeavesTargetUntouched(t *testing.T) {
	_, c := newStubNode(t, always(ok(`null`)))
	got := 42
	require.NoError(t, c.Call(context.Background(), "x", nil, &got))
	require.Equal(t, 42, got)
}

func TestCallResultShapeMismatchIsTransport(t *testing.T) {
	_, c := newStubNode(t, always(ok(`"not a number"`)))
	var n int64
	err := c.Call(context.Background(), "getblockcount", nil, &n)
	require.True(t, noderpc.IsTransport(err), "%v", err)
	require.ErrorContains(t, err, "decode result")
}

func TestCallDeadlines(t *testing.T) {
	tests := []struct {
		name       string
		timeout    time.Duration // Options.Timeout
		ctxTimeout time.Duration // 0: context.Background()
		delay      time.Duration // server delay
		wantErr    bool
	}{
		{name: "ctx deadline beats slow server", timeout: time.Minute, ctxTimeout: 100 * time.Millisecond, delay: 10 * time.Second, wantErr: true},
		{name: "options timeout when ctx has none", timeout: 100 * time.Millisecond, delay: 10 * time.Second, wantErr: true},
		{name: "long ctx deadline overrides short options timeout (long poll)", timeout: 50 * time.Millisecond, ctxTimeout: 10 * time.Second, delay: 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := ok(`1`)
			a.Delay = tc.delay
			stub, _ := newStubNode(t, always(a))
			c, err := noderpc.New(noderpc.Options{URL: stub.srv.URL, User: stubUser, Password: stubPass, Timeout: tc.timeout})
			require.NoError(t, err)
			defer c.Close()

			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			start := time.Now()
			_, err = c.GetBlockCount(ctx)
			elapsed := time.Since(start)
			if !tc.wantErr {
				require.NoError(t, err)
				return
			}
			require.True(t, noderpc.IsTransport(err), "%v", err)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Less(t, elapsed, 5*time.Second, "the deadline was not applied")
		})
	}
}

func TestCallCanceledContext(t *testing.T) {
	a := ok(`1`)
	a.Delay = 10 * time.Second
	_, c := newStubNode(t, always(a))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.GetBlockCount(ctx)
	require.True(t, noderpc.IsTransport(err))
	require.ErrorIs(t, err, context.Canceled)
}

func TestCallConnectionRefused(t *testing.T) {
	port := testutil.FreePort(t) // nothing listens there
	c, err := noderpc.New(noderpc.Options{URL: fmt.Sprintf("127.0.0.1:%d", port), User: stubUser, Password: stubPass})
	require.NoError(t, err)
	_, err = c.GetBestBlockHash(context.Background())
	require.Equal(t, kindTransport, classify(err), "%v", err)
	require.ErrorContains(t, err, "getbestblockhash")
	require.ErrorContains(t, err, "connection refused")
	require.NotContains(t, err.Error(), stubPass)
}

func TestCallConcurrent(t *testing.T) {
	// The stub echoes the request id as the result, so every caller can
	// check it got its own answer.
	stub, c := newStubNode(t, func(req stubRequest) stubAnswer { return ok(string(req.ID)) })
	const callers, perCaller = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers*perCaller)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perCaller {
				var got uint64
				if err := c.Call(context.Background(), "echo", nil, &got); err != nil {
					errs <- err
					continue
				}
				if got == 0 {
					errs <- errors.New("zero id")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	seen := make(map[string]bool)
	for _, r := range stub.requests() {
		require.False(t, seen[string(r.ID)], "id %s reused", r.ID)
		seen[string(r.ID)] = true
	}
	require.Len(t, seen, callers*perCaller)
}
