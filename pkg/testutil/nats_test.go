package testutil

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func TestStartNATS(t *testing.T) {
	tests := []struct {
		name           string
		opts           NATSOptions
		wantMaxPayload int64
	}{
		{name: "plain", opts: NATSOptions{}, wantMaxPayload: 8 << 20},
		{name: "user and password", opts: NATSOptions{User: "gw", Pass: "pw-123"}, wantMaxPayload: 8 << 20},
		{name: "jetstream with auth", opts: NATSOptions{JetStream: true, User: "jm", Pass: "pw-456"}, wantMaxPayload: 8 << 20},
		{name: "custom max payload", opts: NATSOptions{MaxPayload: 1 << 10}, wantMaxPayload: 1 << 10},
		{name: "max payload above default pending", opts: NATSOptions{MaxPayload: 48 << 20}, wantMaxPayload: 48 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, srv := StartNATS(t, tc.opts)
			require.True(t, strings.HasPrefix(url, "nats://127.0.0.1:"), url)
			port := NATSPort(t, srv)
			require.Equal(t, "nats://127.0.0.1:"+strconv.Itoa(port), url)
			require.Less(t, port, 32768)

			var connOpts []nats.Option
			if tc.opts.User != "" {
				connOpts = append(connOpts, nats.UserInfo(tc.opts.User, tc.opts.Pass))

				// Wrong and missing credentials are refused.
				_, err := nats.Connect(url, nats.UserInfo(tc.opts.User, "wrong"), nats.NoReconnect())
				require.ErrorIs(t, err, nats.ErrAuthorization)
				_, err = nats.Connect(url, nats.NoReconnect())
				require.ErrorIs(t, err, nats.ErrAuthorization)
			}
			nc, err := nats.Connect(url, connOpts...)
			require.NoError(t, err)
			defer nc.Close()
			require.Equal(t, tc.wantMaxPayload, nc.MaxPayload())

			sub, err := nc.SubscribeSync("hashgate.test.>")
			require.NoError(t, err)
			require.NoError(t, nc.Publish("hashgate.test.job", []byte("job-1")))
			msg, err := sub.NextMsg(5 * time.Second)
			require.NoError(t, err)
			require.Equal(t, "hashgate.test.job", msg.Subject)
			require.Equal(t, []byte("job-1"), msg.Data)

			if tc.opts.JetStream {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				js, err := jetstream.New(nc)
				require.NoError(t, err)
				stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHARES", Subjects: []string{"shares.>"}})
				require.NoError(t, err)
				ack, err := js.Publish(ctx, "shares.alice", []byte("share"))
				require.NoError(t, err)
				require.Equal(t, uint64(1), ack.Sequence)
				info, err := stream.Info(ctx)
				require.NoError(t, err)
				require.Equal(t, uint64(1), info.State.Msgs)
			}
		})
	}
}

func TestStartNATSOnPortRestart(t *testing.T) {
	opts := NATSOptions{JetStream: true, User: "u", Pass: "p", StoreDir: filepath.Join(t.TempDir(), "js")}
	url, srv := StartNATS(t, opts)
	port := NATSPort(t, srv)

	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(url, nats.UserInfo("u", "p"),
		nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))
	require.NoError(t, err)
	defer nc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "BLOCKS", Subjects: []string{"blocks.>"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "blocks.found", []byte("0000abcd"))
	require.NoError(t, err)

	// Simulate a NATS restart on the same port with the same store.
	srv.Shutdown()
	srv.WaitForShutdown()
	Eventually(t, 5*time.Second, func() bool { return !nc.IsConnected() }, "client never noticed the shutdown")
	url2, srv2 := StartNATSOnPort(t, port, opts)
	require.Equal(t, url, url2)
	require.Equal(t, port, NATSPort(t, srv2))

	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		require.Fail(t, "client did not reconnect")
	}
	stream, err := js.Stream(ctx, "BLOCKS")
	require.NoError(t, err, "stream must survive the restart")
	msg, err := stream.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []byte("0000abcd"), msg.Data)
}

func TestStartNATSOnPortTaken(t *testing.T) {
	_, srv := StartNATS(t, NATSOptions{})
	f := runFake(t, func(tb testing.TB) {
		StartNATSOnPort(tb, NATSPort(t, srv), NATSOptions{})
	})
	require.True(t, f.Failed())
	require.Contains(t, f.msgs[0], "start nats-server on port")
}
