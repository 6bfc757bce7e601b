package center

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
)

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	URL      string        // http(s) endpoint; never logged (it may hold a token)
	Timeout  time.Duration // per attempt
	Deadline time.Duration // per alert, from its arrival
	RetryMin time.Duration // first pause; doubles (with jitter) up to RetryMax
	RetryMax time.Duration
	Queue    int          // alerts waiting; beyond it they skip the webhook
	Client   *http.Client // nil: a client with no redirects followed
	Logger   *zap.Logger
	Metrics  *Metrics
}

// Webhook POSTs alerts from a bounded queue with one worker, retrying with
// exponential backoff; see the package documentation. Add is safe for
// concurrent use; Run must be called once.
type Webhook struct {
	o     WebhookOptions
	lg    *zap.Logger
	host  string // the URL's host, for logs
	queue chan hookJob

	lastErr atomic.Pointer[string] // nil after a success
}

type hookJob struct {
	body     []byte
	deadline time.Time
}

// errPermanent marks answers that retrying will not fix.
var errPermanent = errors.New("webhook refused the alert")

// NewWebhook builds a Webhook for o.URL (already validated).
func NewWebhook(o WebhookOptions) *Webhook {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	host := ""
	if u, err := url.Parse(o.URL); err == nil {
		host = u.Host
	}
	return &Webhook{o: o, lg: o.Logger, host: host, queue: make(chan hookJob, o.Queue)}
}

// Add queues the alert without blocking; when the queue is full it is
// counted as webhook_dropped (its line still goes to Redis).
func (w *Webhook) Add(a *bus.Alert, line string, now time.Time) {
	body, err := json.Marshal(newPayload(a, line))
	if err != nil { // cannot happen: strings and numbers only
		w.o.Metrics.Add(ResultWebhookDropped, 1)
		return
	}
	select {
	case w.queue <- hookJob{body: body, deadline: now.Add(w.o.Deadline)}:
	default:
		w.o.Metrics.Add(ResultWebhookDropped, 1)
	}
}

// Pending returns how many alerts wait for the webhook.
func (w *Webhook) Pending() int { return len(w.queue) }

// Check reports the last delivery failure, or nil.
func (w *Webhook) Check() error {
	if p := w.lastErr.Load(); p != nil {
		return errors.New(*p)
	}
	return nil
}

// Run delivers queued alerts until ctx is done; what is still queued or in
// flight then is dropped (counted).
func (w *Webhook) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			w.o.Metrics.Add(ResultWebhookDropped, len(w.queue))
			return nil
		case j := <-w.queue:
			w.deliver(ctx, j)
		}
	}
}

// deliver posts one alert until it is accepted, refused, or its deadline
// passes; a shutdown (parent done) drops it.
func (w *Webhook) deliver(parent context.Context, j hookJob) {
	ctx, cancel := context.WithDeadline(parent, j.deadline)
	defer cancel()
	pause := w.o.RetryMin
	for attempt := 1; ; attempt++ {
		retryAfter, err := w.post(ctx, j.body)
		if err == nil {
			w.lastErr.Store(nil)
			w.o.Metrics.Add(ResultWebhookSent, 1)
			return
		}
		msg := err.Error()
		w.lastErr.Store(&msg)
		if parent.Err() != nil {
			w.o.Metrics.Add(ResultWebhookDropped, 1)
			return
		}
		wait := max(pause, retryAfter)
		if errors.Is(err, errPermanent) || !time.Now().Add(wait).Before(j.deadline) {
			w.o.Metrics.Add(ResultWebhookFailed, 1)
			w.lg.Warn("webhook gave up on an alert", zap.String("webhook_host", w.host),
				zap.Int("attempts", attempt), zap.Error(err))
			return
		}
		if attempt == 1 {
			w.lg.Warn("webhook post failed; retrying", zap.String("webhook_host", w.host), zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		// Exponential backoff with ±20% jitter.
		pause = min(w.o.RetryMax, time.Duration(float64(2*pause)*(0.8+0.4*rand.Float64())))
	}
}

// post makes one attempt. It returns the server's Retry-After (seconds
// form) when it sent one.
func (w *Webhook) post(ctx context.Context, body []byte) (time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errPermanent, redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hashgate-alertcenter")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return 0, redact(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return 0, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooEarly || c == http.StatusTooManyRequests || c >= 500:
		var ra time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ra = time.Duration(s) * time.Second
		}
		return ra, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return 0, fmt.Errorf("%w: %s", errPermanent, resp.Status)
	}
}

// redact drops the URL (which may carry a token) from a client error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
