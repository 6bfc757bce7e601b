// Package pkg is the root of hashgate's shared libraries. It holds no code;
// see the sub-packages: blockutil (Bitcoin job arithmetic), bus (internal
// messages on NATS), noderpc (Bitcoin node JSON-RPC), confutil (strict config
// loading), logx (zap setup), admin (loopback admin endpoint) and testutil
// (real-server harnesses for tests).
package pkg
