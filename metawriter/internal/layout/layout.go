// Package layout names the Redis keys and builds the event JSON that
// analysts read (DESIGN.md §4, the original metawriter's layout):
//
//	<coin>:s:<user>[:<worker>]          hash  minute → accepted share count
//	<coin>:p:<user>[:<worker>]          hash  minute → sum of accepted difficulty
//	<coin>:g:<user>                     hash  minute → sum of difficulty / network difficulty
//	<coin>:s:<user>[:<worker>]:reject   hash  minute → rejected share count
//	<coin>:m:<key>                      hash  minute → pool-wide monitor value
//	<coin>:mh:<host>:<key>              hash  minute → the same per gateway host
//	<coin>:mk:<key>                     set   hosts that reported <key>
//	mining:keys, monitor:keys           set   indexes of share keys and of <coin>:m:<key>
//	newblock, newworker, newevent       list  JSON events
//
// Hash fields are unix minutes (multiples of 60) as decimal strings. The
// package is pure: no Redis access, safe for concurrent use.
package layout

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Index sets and event lists.
const (
	MiningKeys  = "mining:keys"
	MonitorKeys = "monitor:keys"
	NewBlock    = "newblock"
	NewWorker   = "newworker"
	NewEvent    = "newevent"
)

// RejectSuffix ends the rejected-share keys.
const RejectSuffix = ":reject"

// Field returns the hash field of a minute: its unix time in decimal.
func Field(minute int64) string { return strconv.FormatInt(minute, 10) }

func join(coin, kind, user, worker string) string {
	if worker == "" {
		return coin + ":" + kind + ":" + user
	}
	return coin + ":" + kind + ":" + user + ":" + worker
}

// Shares is <coin>:s:<user>, or <coin>:s:<user>:<worker> when worker is set.
func Shares(coin, user, worker string) string { return join(coin, "s", user, worker) }

// Pow is <coin>:p:<user>[:<worker>]: accepted difficulty.
func Pow(coin, user, worker string) string { return join(coin, "p", user, worker) }

// Goal is <coin>:g:<user> (no worker level, as in the original).
func Goal(coin, user string) string { return join(coin, "g", user, "") }

// Rejects is <coin>:s:<user>[:<worker>]:reject.
func Rejects(coin, user, worker string) string { return Shares(coin, user, worker) + RejectSuffix }

// Monitor is <coin>:m:<key>.
func Monitor(coin, key string) string { return coin + ":m:" + key }

// MonitorHost is <coin>:mh:<host>:<key>.
func MonitorHost(coin, host, key string) string { return coin + ":mh:" + host + ":" + key }

// MonitorHosts is <coin>:mk:<key>, the set of hosts that reported key.
func MonitorHosts(coin, key string) string { return coin + ":mk:" + key }

// SplitMonitor parses a monitor:keys member <coin>:m:<key>.
func SplitMonitor(k string) (coin, key string, ok bool) {
	coin, rest, ok := strings.Cut(k, ":")
	if !ok || !strings.HasPrefix(rest, "m:") || len(rest) == 2 {
		return "", "", false
	}
	return coin, rest[2:], true
}

// ValidCoin reports whether coin can be the first token of a key: non-empty
// and without ':' (which would make the layout ambiguous).
func ValidCoin(coin string) bool { return coin != "" && !strings.ContainsAny(coin, ": \t\r\n") }

// EventJSON is an entry of newevent: {"user","worker","coin","peer","event"}.
func EventJSON(user, worker, coin, peer, event string) []byte {
	return marshal(struct {
		User   string `json:"user"`
		Worker string `json:"worker"`
		Coin   string `json:"coin"`
		Peer   string `json:"peer"`
		Event  string `json:"event"`
	}{user, worker, coin, peer, event})
}

// WorkerJSON is an entry of newworker: {"user","worker","coin"}.
func WorkerJSON(user, worker, coin string) []byte {
	return marshal(struct {
		User   string `json:"user"`
		Worker string `json:"worker"`
		Coin   string `json:"coin"`
	}{user, worker, coin})
}

// BlockJSON is an entry of newblock: {"name","hash","user","worker"}.
func BlockJSON(name, hash, user, worker string) []byte {
	return marshal(struct {
		Name   string `json:"name"`
		Hash   string `json:"hash"`
		User   string `json:"user"`
		Worker string `json:"worker"`
	}{name, hash, user, worker})
}

// marshal encodes v compactly without HTML escaping (consumers are not
// browsers; "<" stays "<").
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // structs of strings always encode
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}
