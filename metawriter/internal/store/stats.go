package store

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/hashgate/hashgate/metawriter/internal/layout"
	"github.com/hashgate/hashgate/pkg/bus"
)

// statsLua applies a statistics batch.
//
//	KEYS[1]   the done key
//	KEYS[2]   mining:keys
//	KEYS[3]   monitor:keys
//	KEYS[4..] the data keys
//	ARGV[1]   the done key's TTL in seconds
//	ARGV[2]   the data keys' TTL in seconds (0: none)
//	ARGV[3]   the minute field
//	ARGV[4..] two per data key, in order: code, value
//
// Codes: c = share count (HINCRBY, indexed in mining:keys); d = share
// difficulty or goal (HINCRBYFLOAT, indexed in mining:keys); m = pool
// monitor value (HINCRBYFLOAT, indexed in monitor:keys); h = per-host
// monitor value (HINCRBYFLOAT); s = host set (SADD value). Every data key
// gets the TTL. Returns 1 when applied, 0 when the done key existed, or a
// HGCONFLICT error, having written nothing.
const statsLua = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local function conflict(msg) return redis.error_reply('HGCONFLICT ' .. msg) end
for i = 2, 3 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= 'set' then return conflict(KEYS[i] .. ' is a ' .. t .. ', not a set') end
end
local field, n = ARGV[3], #KEYS
for j = 4, n do
  local k, code = KEYS[j], ARGV[2 * j - 4]
  if code == 's' then
    local t = redis.call('TYPE', k)['ok']
    if t ~= 'none' and t ~= 'set' then return conflict(k .. ' is a ' .. t .. ', not a set') end
  else
    local v = redis.pcall('HGET', k, field)
    if type(v) == 'table' and v.err then return conflict(k .. ' is not a hash') end
    if v then
      if code == 'c' then
        if not string.match(v, '^%-?%d+$') then return conflict(k .. ' field ' .. field .. ' is not an integer') end
      elseif tonumber(v) == nil then
        return conflict(k .. ' field ' .. field .. ' is not a number')
      end
    end
  end
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
local ttl = tonumber(ARGV[2])
for j = 4, n do
  local k, code, v = KEYS[j], ARGV[2 * j - 4], ARGV[2 * j - 3]
  if code == 'c' then
    redis.call('HINCRBY', k, field, v)
    redis.call('SADD', KEYS[2], k)
  elseif code == 'd' then
    redis.call('HINCRBYFLOAT', k, field, v)
    redis.call('SADD', KEYS[2], k)
  elseif code == 'm' then
    redis.call('HINCRBYFLOAT', k, field, v)
    redis.call('SADD', KEYS[3], k)
  elseif code == 'h' then
    redis.call('HINCRBYFLOAT', k, field, v)
  elseif code == 's' then
    redis.call('SADD', k, v)
  end
  if ttl > 0 then redis.call('EXPIRE', k, ttl) end
end
return 1
`

var statsScript = redis.NewScript(statsLua)

// ApplyStats writes one statistics batch of coin: per user (summed over
// its workers) and per worker the accepted count, accepted difficulty,
// goal (user only) and rejected count; per monitor value the pool-wide and
// per-gateway hashes and the host set. Zero increments are skipped.
func (s *Store) ApplyStats(ctx context.Context, coin string, b *bus.StatsBatch) (Result, error) {
	if s.o.Retention > 0 && b.Minute < s.o.Now().Add(-s.o.Retention).Unix() {
		return Expired, nil
	}
	keys := []string{s.DoneKey(coin, bus.TopicStats, b.ID()), layout.MiningKeys, layout.MonitorKeys}
	args := []any{s.statsDedupTTL(b), strconv.FormatInt(s.keyTTL(), 10), layout.Field(b.Minute)}
	put := func(key string, code string, value string) {
		keys = append(keys, key)
		args = append(args, code, value)
	}

	// Sum per user and per user.worker (a batch should not repeat a
	// worker, but if it does the sums stay right).
	type sums struct {
		accepted, rejected uint64
		diff, goal         float64
	}
	type uw struct{ user, worker string }
	users, workers := map[string]*sums{}, map[uw]*sums{}
	var userOrder []string
	var workerOrder []uw
	for i := range b.Workers {
		w := &b.Workers[i]
		if w.User == "" {
			continue
		}
		u := users[w.User]
		if u == nil {
			u = &sums{}
			users[w.User] = u
			userOrder = append(userOrder, w.User)
		}
		u.accepted += w.Accepted
		u.rejected += w.Rejected
		u.diff += w.DiffSum
		u.goal += w.GoalSum
		if w.Worker == "" {
			continue
		}
		id := uw{w.User, w.Worker}
		ws := workers[id]
		if ws == nil {
			ws = &sums{}
			workers[id] = ws
			workerOrder = append(workerOrder, id)
		}
		ws.accepted += w.Accepted
		ws.rejected += w.Rejected
		ws.diff += w.DiffSum
	}
	share := func(user, worker string, v *sums) {
		if v.accepted > 0 {
			put(layout.Shares(coin, user, worker), "c", strconv.FormatUint(v.accepted, 10))
		}
		if v.diff != 0 {
			put(layout.Pow(coin, user, worker), "d", formatFloat(v.diff))
		}
		if worker == "" && v.goal != 0 {
			put(layout.Goal(coin, user), "d", formatFloat(v.goal))
		}
		if v.rejected > 0 {
			put(layout.Rejects(coin, user, worker), "c", strconv.FormatUint(v.rejected, 10))
		}
	}
	for _, u := range userOrder {
		share(u, "", users[u])
	}
	for _, id := range workerOrder {
		share(id.user, id.worker, workers[id])
	}

	// Monitor values, summed per key.
	mon := map[string]float64{}
	var monOrder []string
	for _, m := range b.Monitor {
		if m.Key == "" {
			continue
		}
		if _, ok := mon[m.Key]; !ok {
			monOrder = append(monOrder, m.Key)
		}
		mon[m.Key] += m.Value
	}
	for _, k := range monOrder {
		v := mon[k]
		if v == 0 {
			continue
		}
		put(layout.Monitor(coin, k), "m", formatFloat(v))
		if b.Gateway != "" {
			put(layout.MonitorHost(coin, b.Gateway, k), "h", formatFloat(v))
			put(layout.MonitorHosts(coin, k), "s", b.Gateway)
		}
	}
	return result(statsScript.Run(ctx, s.o.Client, keys, args...).Int())
}
