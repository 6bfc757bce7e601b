package admin

import (
	"net"
	"strconv"

	"github.com/hashgate/hashgate/pkg/confutil"
)

// Config configures a daemon's admin endpoint. It is embedded in every daemon
// config as "admin".
type Config struct {
	Listen      string `json:"listen"`       // host:port, e.g. "127.0.0.1:7101"; port 0 picks a free port
	AllowRemote bool   `json:"allow_remote"` // permit non-loopback hosts; the endpoint has no authentication
}

// Validate reports every problem with c at once. Listen must be host:port
// with a numeric port; unless AllowRemote is set, the host must be a loopback
// IP address or "localhost".
func (c Config) Validate() error {
	var p confutil.Problems
	if c.Listen == "" {
		p.Add("listen", "must be set, e.g. \"127.0.0.1:7101\"")
		return p.Err()
	}

	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		p.Add("listen", "%q is not host:port: %v", c.Listen, err)
		return p.Err()
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.Add("listen", "port %q in %q must be a number from 0 to 65535", port, c.Listen)
	}

	if !c.AllowRemote {
		switch ip := net.ParseIP(host); {
		case host == "localhost":
		case host == "" || (ip != nil && ip.IsUnspecified()):
			p.Add("listen", "%q listens on all interfaces; use a loopback address such as 127.0.0.1, or set allow_remote", c.Listen)
		case ip == nil:
			p.Add("listen", "host %q must be a loopback IP address or localhost unless allow_remote is set", host)
		case !ip.IsLoopback():
			p.Add("listen", "%s is not a loopback address; use 127.0.0.1 or ::1, or set allow_remote", host)
		}
	}
	return p.Err()
}
