// Package store applies statistics batches and events to Redis, atomically
// and exactly once, and sweeps minute fields older than the retention.
//
// # Exactly once
//
// Every message becomes ONE call of a Lua script (EVALSHA, falling back to
// EVAL when the server has not cached it; statsLua for batches, eventLua
// for events). Redis runs a script atomically and, with an append-only
// file, persists its effects as one transaction. The script:
//
//  1. returns 0 at once if the message's done key
//     <key_prefix>:done:<coin>:<topic>:<id> exists: the message was applied
//     before (a redelivery after a lost ack, a gateway's re-send under a new
//     JetStream message id, another metawriter racing for it) and nothing
//     changes;
//  2. checks, before writing anything, that every key has the expected
//     type and every hash field it increments holds a number, so no command
//     can fail halfway (Redis does not roll back a script's earlier writes);
//     a mismatch returns a HGCONFLICT error and writes nothing;
//  3. sets the done key with the dedup TTL and applies every HINCRBY,
//     HINCRBYFLOAT, SADD, RPUSH, LTRIM and EXPIRE of the message.
//
// The id is the batch's or event's own ID() (gateway, boot, minute/sequence,
// part), not the JetStream message id, so a batch re-sent under a new
// message id is still counted once. The caller acknowledges the message
// only after the script returned; if the reply is lost the redelivery hits
// step 1. A retried call is therefore always safe.
//
// A batch is encoded compactly (one key and two arguments per hash: the
// minute field is shared), because Redis's cost for a big script call is
// mostly in its arguments: 10,000 workers take a few hundred milliseconds.
//
// # Retention
//
// Every per-user, per-worker and monitor key gets EXPIRE retention + 1h on
// each write, so keys of users who stop mining vanish. Sweep removes the
// minute fields older than the retention from keys that are still written
// (see Sweep). Batches older than the retention are skipped.
//
// A Store is safe for concurrent use.
package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashgate/hashgate/metawriter/internal/layout"
	"github.com/hashgate/hashgate/pkg/bus"
)

// eventLua applies an event (a general form, fine for small messages).
// KEYS[1] is the done key, KEYS[2..] every key the message touches. ARGV[1]
// is the done key's TTL in seconds; ARGV[2..] are operations of four
// arguments each: code, index into KEYS, a, b.
//
//	h  HINCRBY      KEYS[i] a b     (hash, field a must hold an integer)
//	f  HINCRBYFLOAT KEYS[i] a b     (hash, field a must hold a number)
//	s  SADD         KEYS[i] a       (set)
//	l  RPUSH        KEYS[i] a       (list)
//	t  LTRIM        KEYS[i] -a -1   (list: keep the newest a entries)
//	x  EXPIRE       KEYS[i] a
//
// It returns 1 when applied, 0 when the done key existed, and an error
// starting with HGCONFLICT (having written nothing) when a key or field
// would make a command fail.
const eventLua = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local want = {h = 'hash', f = 'hash', s = 'set', l = 'list', t = 'list'}
local checked = {}
for i = 2, #ARGV, 4 do
  local op, k, a = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2]
  local w = want[op]
  if w ~= nil and checked[k] == nil then
    local t = redis.call('TYPE', k)['ok']
    if t ~= 'none' and t ~= w then
      return redis.error_reply('HGCONFLICT ' .. k .. ' is a ' .. t .. ', not a ' .. w)
    end
    checked[k] = true
  end
  if op == 'h' or op == 'f' then
    local v = redis.call('HGET', k, a)
    if v then
      if op == 'h' and not string.match(v, '^%-?%d+$') then
        return redis.error_reply('HGCONFLICT ' .. k .. ' field ' .. a .. ' is not an integer')
      elseif op == 'f' and tonumber(v) == nil then
        return redis.error_reply('HGCONFLICT ' .. k .. ' field ' .. a .. ' is not a number')
      end
    end
  end
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
for i = 2, #ARGV, 4 do
  local op, k, a, b = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  if op == 'h' then redis.call('HINCRBY', k, a, b)
  elseif op == 'f' then redis.call('HINCRBYFLOAT', k, a, b)
  elseif op == 's' then redis.call('SADD', k, a)
  elseif op == 'l' then redis.call('RPUSH', k, a)
  elseif op == 't' then redis.call('LTRIM', k, -tonumber(a), -1)
  elseif op == 'x' then redis.call('EXPIRE', k, a)
  end
end
return 1
`

var eventScript = redis.NewScript(eventLua)

// Result is what applying a message did.
type Result int

// Results of ApplyStats and ApplyEvent.
const (
	// Applied: the message's counts are in Redis now.
	Applied Result = iota
	// Duplicate: the message had been applied before; nothing changed.
	Duplicate
	// Expired: the batch's minute is older than the retention; skipped.
	Expired
)

func (r Result) String() string {
	switch r {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Expired:
		return "expired"
	}
	return "unknown"
}

// ConflictError reports that Redis holds a key or field of the wrong type
// where the message would write (someone else wrote there). Nothing was
// written; the message can be applied once an operator removed the key.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return "store: " + e.Msg }

// Options configure a Store.
type Options struct {
	// Client is the Redis connection pool.
	Client *redis.Client
	// KeyPrefix prefixes the metawriter's own keys (done ids, sweep state).
	KeyPrefix string
	// DedupTTL is how long done keys live.
	DedupTTL time.Duration
	// AgentDedupTTL is how long the done keys of mineragent share batches
	// (bus.StatsBatch.IsAgent) live. An agent sends ten batches a second,
	// so these cannot be kept for DedupTTL; they need not be: a gateway
	// credits an agent batch only within bus.MaxAgentBatchAge, JetStream
	// drops a second copy published within its duplicate window, and the
	// done key only has to outlive redeliveries of one stream message.
	// Zero means DedupTTL.
	AgentDedupTTL time.Duration
	// Retention: keys expire retention + 1h after their last write, fields
	// older than it are swept, older batches skipped. Zero keeps everything.
	Retention time.Duration
	// EventTTL expires the event lists after their last push; zero: never.
	EventTTL time.Duration
	// EventMaxLen trims the event lists to their newest entries; zero:
	// unlimited.
	EventMaxLen int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store writes the layout. Safe for concurrent use.
type Store struct {
	o Options
}

// New returns a Store.
func New(o Options) *Store {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{o: o}
}

// DoneKey is the key that records an applied message.
func (s *Store) DoneKey(coin, topic, id string) string {
	return s.o.KeyPrefix + ":done:" + coin + ":" + topic + ":" + id
}

// keyTTL is the expiry of data keys in seconds, 0 for none.
func (s *Store) keyTTL() int64 {
	if s.o.Retention <= 0 {
		return 0
	}
	return int64((s.o.Retention + time.Hour) / time.Second)
}

// Ping checks the connection.
func (s *Store) Ping(ctx context.Context) error { return s.o.Client.Ping(ctx).Err() }

// ApplyEvent appends one event of coin to its list.
func (s *Store) ApplyEvent(ctx context.Context, coin string, e *bus.Event) (Result, error) {
	evCoin := e.Coin
	if evCoin == "" {
		evCoin = coin
	}
	var list string
	var entry []byte
	switch e.Kind {
	case bus.EventNewWorker:
		list, entry = layout.NewWorker, layout.WorkerJSON(e.User, e.Worker, evCoin)
	case bus.EventBlock:
		name := e.Name
		if name == "" {
			name = strings.ToUpper(evCoin)
		}
		list, entry = layout.NewBlock, layout.BlockJSON(name, e.Hash, e.User, e.Worker)
	default: // connected, disconnected, and whatever else agents report
		list, entry = layout.NewEvent, layout.EventJSON(e.User, e.Worker, evCoin, e.Peer, e.Kind)
	}
	p := newPlan(s.DoneKey(coin, bus.TopicEvent, e.ID()))
	p.add('l', list, string(entry), "")
	if s.o.EventMaxLen > 0 {
		p.add('t', list, strconv.FormatInt(s.o.EventMaxLen, 10), "")
	}
	if s.o.EventTTL > 0 {
		p.add('x', list, strconv.FormatInt(int64(max(s.o.EventTTL/time.Second, 1)), 10), "")
	}
	return s.run(ctx, p)
}

// dedupTTL is the done keys' TTL in seconds.
func (s *Store) dedupTTL() string { return ttlSeconds(s.o.DedupTTL) }

// statsDedupTTL is the done key TTL of a statistics batch.
func (s *Store) statsDedupTTL(b *bus.StatsBatch) string {
	if b.IsAgent() && s.o.AgentDedupTTL > 0 {
		return ttlSeconds(s.o.AgentDedupTTL)
	}
	return s.dedupTTL()
}

func ttlSeconds(d time.Duration) string { return strconv.FormatInt(int64(max(d/time.Second, 1)), 10) }

// run executes an event plan.
func (s *Store) run(ctx context.Context, p *plan) (Result, error) {
	args := append([]any{s.dedupTTL()}, p.args...)
	return result(eventScript.Run(ctx, s.o.Client, p.keys, args...).Int())
}

// result interprets a script's reply.
func result(n int, err error) (Result, error) {
	if err != nil {
		if redis.HasErrorPrefix(err, "HGCONFLICT") {
			return 0, &ConflictError{Msg: strings.TrimPrefix(err.Error(), "HGCONFLICT ")}
		}
		return 0, fmt.Errorf("redis apply: %w", err)
	}
	if n == 0 {
		return Duplicate, nil
	}
	return Applied, nil
}

// plan collects an event script call's keys and operations.
type plan struct {
	keys []string
	idx  map[string]int // key → 1-based index into keys (KEYS in Lua)
	args []any
}

func newPlan(done string) *plan {
	return &plan{keys: []string{done}, idx: map[string]int{done: 1}}
}

func (p *plan) add(op byte, key, a, b string) {
	i, ok := p.idx[key]
	if !ok {
		p.keys = append(p.keys, key)
		i = len(p.keys)
		p.idx[key] = i
	}
	p.args = append(p.args, string(op), strconv.Itoa(i), a, b)
}

// formatFloat writes v for HINCRBYFLOAT: the shortest decimal that reads
// back as v. (Redis keeps sums as long doubles printed with 17 decimals, so
// integers and binary fractions such as 0.5 stay exact.)
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// IsRedisDown reports whether err means Redis could not be used (network
// failure, timeout, loading, busy, out of memory, read-only replica, ...)
// rather than a conflict in the data.
func IsRedisDown(err error) bool {
	var c *ConflictError
	return err != nil && !errors.As(err, &c)
}
