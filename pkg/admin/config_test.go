package admin_test

import (
	"testing"

	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     admin.Config
		wantErr string // substring; empty means valid
	}{
		{name: "loopback v4", cfg: admin.Config{Listen: "127.0.0.1:7101"}},
		{name: "loopback v4 other", cfg: admin.Config{Listen: "127.0.0.2:7101"}},
		{name: "loopback v6", cfg: admin.Config{Listen: "[::1]:7101"}},
		{name: "localhost", cfg: admin.Config{Listen: "localhost:7101"}},
		{name: "port zero", cfg: admin.Config{Listen: "127.0.0.1:0"}},
		{name: "empty", cfg: admin.Config{}, wantErr: "listen: must be set"},
		{name: "no port", cfg: admin.Config{Listen: "127.0.0.1"}, wantErr: `listen: "127.0.0.1" is not host:port`},
		{name: "named port", cfg: admin.Config{Listen: "127.0.0.1:http"}, wantErr: `port "http" in "127.0.0.1:http" must be a number`},
		{name: "port too big", cfg: admin.Config{Listen: "127.0.0.1:65536"}, wantErr: "must be a number from 0 to 65535"},
		{name: "empty port", cfg: admin.Config{Listen: "127.0.0.1:"}, wantErr: "must be a number from 0 to 65535"},
		{name: "all interfaces v4", cfg: admin.Config{Listen: "0.0.0.0:1"}, wantErr: `"0.0.0.0:1" listens on all interfaces; use a loopback address such as 127.0.0.1, or set allow_remote`},
		{name: "all interfaces v6", cfg: admin.Config{Listen: "[::]:1"}, wantErr: "listens on all interfaces"},
		{name: "empty host", cfg: admin.Config{Listen: ":7101"}, wantErr: "listens on all interfaces"},
		{name: "lan address", cfg: admin.Config{Listen: "10.0.0.5:7101"}, wantErr: "10.0.0.5 is not a loopback address"},
		{name: "hostname", cfg: admin.Config{Listen: "admin.internal:7101"}, wantErr: `host "admin.internal" must be a loopback IP address or localhost`},
		{name: "remote allowed all interfaces", cfg: admin.Config{Listen: "0.0.0.0:1", AllowRemote: true}},
		{name: "remote allowed empty host", cfg: admin.Config{Listen: ":7101", AllowRemote: true}},
		{name: "remote allowed hostname", cfg: admin.Config{Listen: "admin.internal:7101", AllowRemote: true}},
		{name: "remote allowed still needs a port", cfg: admin.Config{Listen: "0.0.0.0", AllowRemote: true}, wantErr: "is not host:port"},
		{name: "bad port and remote reported together", cfg: admin.Config{Listen: "0.0.0.0:x"}, wantErr: "must be a number from 0 to 65535\nlisten: \"0.0.0.0:x\" listens on all interfaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
