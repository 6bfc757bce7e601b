package noderpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// MaxResponseBytes caps a response body; a larger answer is a transport
// error. 64 MiB holds the hex of any block a node can serve.
const MaxResponseBytes = 64 << 20

// maxIdleConnsPerHost is the keep-alive pool size per node.
const maxIdleConnsPerHost = 8

// Options configures a Client.
type Options struct {
	// URL is the node's RPC endpoint, "http://host:port" or
	// "https://host:port" with an optional path (e.g. "/wallet/pool"). A bare
	// "host:port" gets "http://" prepended. Credentials embedded in the URL
	// are used when User and Password are empty and are always removed from
	// the stored URL.
	URL string
	// User is the RPC user name for HTTP basic authentication.
	User string
	// Password is the RPC password. It never appears in errors.
	Password string
	// Timeout bounds each call whose context has no deadline; zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// Client is a JSON-RPC client for one Bitcoin node. It is safe for concurrent
// use by multiple goroutines.
type Client struct {
	url      string // without user info
	user     string
	password string
	auth     bool
	timeout  time.Duration
	maxBody  int64 // MaxResponseBytes; lowered by tests
	hc       *http.Client
	nextID   atomic.Uint64
}

// New validates opts and returns a Client. It does not contact the node.
func New(opts Options) (*Client, error) {
	raw := strings.TrimSpace(opts.URL)
	if raw == "" {
		return nil, errors.New("noderpc: empty node URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("noderpc: invalid node URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("noderpc: invalid node URL: scheme %q, want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("noderpc: invalid node URL: no host")
	}

	user, password := opts.User, opts.Password
	if u.User != nil {
		if user == "" && password == "" {
			user = u.User.Username()
			password, _ = u.User.Password()
		}
		u.User = nil
	}
	if u.Path == "" {
		u.Path = "/"
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}

	transport := &http.Transport{
		// Node RPC lives on a private network; environment proxies are
		// deliberately not consulted.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          4 * maxIdleConnsPerHost,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{
		url:      u.String(),
		user:     user,
		password: password,
		auth:     user != "" || password != "",
		timeout:  timeout,
		maxBody:  MaxResponseBytes,
		hc:       &http.Client{Transport: transport},
	}, nil
}

// URL returns the node URL the client posts to, without credentials.
func (c *Client) URL() string { return c.url }

// Close releases idle keep-alive connections. The Client stays usable; Close
// only matters to tests that check for leaked goroutines and to long-lived
// programs that drop a Client.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// request is the JSON-RPC 1.0 request envelope. Field order is the wire order.
type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

// Call invokes method with params and decodes the result into result, which
// must be a pointer or nil (result ignored). A JSON null result leaves result
// untouched. The call is bounded by ctx, or by Options.Timeout when ctx has
// no deadline. Errors are *RPCError, ErrUnauthorized (wrapped) or
// *TransportError; see the package documentation.
func (c *Client) Call(ctx context.Context, method string, params []any, result any) error {
	raw, err := c.call(ctx, method, params)
	if err != nil {
		return err
	}
	if result == nil || raw == nil {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return &TransportError{Op: method, Err: fmt.Errorf("decode result: %w", err)}
	}
	return nil
}

// call performs one HTTP round trip and returns the raw result (nil for JSON
// null).
func (c *Client) call(ctx context.Context, method string, params []any) (json.RawMessage, error) {
	if params == nil {
		params = []any{} // btcd rejects "params": null as malformed
	}
	id := c.nextID.Add(1)
	body, err := json.Marshal(request{JSONRPC: "1.0", ID: id, Method: method, Params: params})
	if err != nil {
		return nil, &TransportError{Op: method, Err: fmt.Errorf("encode request: %w", err)}
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, &TransportError{Op: method, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.auth {
		req.SetBasicAuth(c.user, c.password)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &TransportError{Op: method, Err: fmt.Errorf("http post: %w", unwrapURLError(err))}
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%w: %s: http %d", ErrUnauthorized, method, resp.StatusCode)
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, &TransportError{Op: method, Err: fmt.Errorf("read response: %w", err)}
	}
	if int64(len(data)) > c.maxBody {
		return nil, &TransportError{Op: method, Err: fmt.Errorf("response larger than %d bytes", c.maxBody)}
	}

	result, derr := decodeResponse(data, id)
	var rpcErr *RPCError
	switch {
	case errors.As(derr, &rpcErr):
		// Bitcoin Core sends RPC errors with HTTP 500/404/400; btcd with 200.
		rpcErr.Method = method
		return nil, rpcErr
	case resp.StatusCode != http.StatusOK:
		return nil, &TransportError{Op: method, Err: fmt.Errorf("http status %d %s: %s",
			resp.StatusCode, http.StatusText(resp.StatusCode), clip(bytes.TrimSpace(data)))}
	case derr != nil:
		return nil, &TransportError{Op: method, Err: derr}
	}
	return result, nil
}

// unwrapURLError strips the *url.Error wrapper the http.Client adds, which
// only repeats the method and URL; the cause (and its Unwrap chain to
// context errors) is kept.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
