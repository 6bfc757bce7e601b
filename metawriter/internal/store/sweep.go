package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashgate/hashgate/metawriter/internal/layout"
)

// unindexLua removes from the set KEYS[1] each member KEYS[2..] whose key no
// longer exists. Checking and removing in one script means a key written
// again meanwhile keeps its index entry.
const unindexLua = `
local n = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then n = n + redis.call('SREM', KEYS[1], KEYS[i]) end
end
return n
`

// unindexHostsLua removes from the host set KEYS[1] each host ARGV[i-1]
// whose per-host key KEYS[i] no longer exists.
const unindexHostsLua = `
local n = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then n = n + redis.call('SREM', KEYS[1], ARGV[i - 1]) end
end
return n
`

var (
	unindexScript      = redis.NewScript(unindexLua)
	unindexHostsScript = redis.NewScript(unindexHostsLua)
)

// Sweep tuning.
const (
	// sweepRangeMax is the widest gap since the last sweep, in minutes, that
	// is swept by deleting the gap's minute fields by name; a wider gap (or
	// the first sweep) scans every field of every key instead.
	sweepRangeMax = 7 * 24 * 60
	// sweepMargin re-deletes this much before the last cutoff, covering
	// clock skew between metawriters.
	sweepMargin = time.Hour
	scanCount   = 500   // SSCAN/HSCAN page size
	hdelArgsMax = 50000 // field names per pipeline in range mode
)

// SweepResult tells what a sweep did.
type SweepResult struct {
	Cutoff    int64 // fields of minutes before this unix time were removed
	Full      bool  // every field was scanned (first sweep or a long gap)
	Keys      int   // hashes visited
	Fields    int64 // fields removed
	Unindexed int64 // index and host-set entries removed for vanished keys
}

func (s *Store) sweepKey(name string) string { return s.o.KeyPrefix + ":sweep:" + name }

// TryLockSweep takes the pool-wide sweep lock for ttl (it is never
// released early, so the pool sweeps about once per ttl) and reports
// whether this caller got it.
func (s *Store) TryLockSweep(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	ok, err := s.o.Client.SetNX(ctx, s.sweepKey("lock"), owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("sweep lock: %w", err)
	}
	return ok, nil
}

// Sweep removes the minute fields older than the retention from every key
// in mining:keys, every <coin>:m:<key> in monitor:keys and its per-host
// keys, and drops index entries of keys that expired. It does nothing when
// the retention is zero.
//
// Normally only the minutes between the previous sweep's cutoff (stored in
// <key_prefix>:sweep:cutoff) and the new one are deleted, by name, so a
// sweep costs O(keys × minutes since the last sweep), not O(all fields).
// The first sweep, or one after a gap over 7 days, scans every field.
// Fields older than the cutoff are not written again afterwards because
// batches older than the retention are skipped. Concurrent sweeps are
// harmless (HDEL is idempotent) but wasteful; see TryLockSweep.
func (s *Store) Sweep(ctx context.Context) (SweepResult, error) {
	if s.o.Retention <= 0 {
		return SweepResult{}, nil
	}
	cl := s.o.Client
	cutoff := s.o.Now().Add(-s.o.Retention).Unix() / 60 * 60
	res := SweepResult{Cutoff: cutoff}

	last, err := cl.Get(ctx, s.sweepKey("cutoff")).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return res, fmt.Errorf("sweep: read last cutoff: %w", err)
	}
	var fields []string // range mode: the minute fields to delete by name
	if last > 0 && cutoff-last <= sweepRangeMax*60 {
		from := (last - int64(sweepMargin/time.Second)) / 60 * 60
		for m := from; m < cutoff; m += 60 {
			fields = append(fields, layout.Field(m))
		}
	} else {
		res.Full = true
	}

	// Share keys.
	err = s.scanSet(ctx, layout.MiningKeys, func(members []string) error {
		if err := s.trim(ctx, members, fields, cutoff, res.Full, &res); err != nil {
			return err
		}
		n, err := unindexScript.Run(ctx, cl, append([]string{layout.MiningKeys}, members...)).Int64()
		if err != nil {
			return fmt.Errorf("sweep: unindex: %w", err)
		}
		res.Unindexed += n
		return nil
	})
	if err != nil {
		return res, err
	}

	// Monitor keys, their per-host keys and host sets.
	err = s.scanSet(ctx, layout.MonitorKeys, func(members []string) error {
		for _, m := range members {
			coin, key, ok := layout.SplitMonitor(m)
			if !ok {
				continue
			}
			hostSet := layout.MonitorHosts(coin, key)
			hosts, err := cl.SMembers(ctx, hostSet).Result()
			if err != nil {
				return fmt.Errorf("sweep: read %s: %w", hostSet, err)
			}
			if len(hosts) == 0 {
				continue
			}
			hostKeys := make([]string, len(hosts))
			hostArgs := make([]any, len(hosts))
			for i, h := range hosts {
				hostKeys[i] = layout.MonitorHost(coin, h, key)
				hostArgs[i] = h
			}
			if err := s.trim(ctx, hostKeys, fields, cutoff, res.Full, &res); err != nil {
				return err
			}
			n, err := unindexHostsScript.Run(ctx, cl, append([]string{hostSet}, hostKeys...), hostArgs...).Int64()
			if err != nil {
				return fmt.Errorf("sweep: unindex hosts of %s: %w", hostSet, err)
			}
			res.Unindexed += n
		}
		if err := s.trim(ctx, members, fields, cutoff, res.Full, &res); err != nil {
			return err
		}
		n, err := unindexScript.Run(ctx, cl, append([]string{layout.MonitorKeys}, members...)).Int64()
		if err != nil {
			return fmt.Errorf("sweep: unindex: %w", err)
		}
		res.Unindexed += n
		return nil
	})
	if err != nil {
		return res, err
	}
	if err := cl.Set(ctx, s.sweepKey("cutoff"), cutoff, 0).Err(); err != nil {
		return res, fmt.Errorf("sweep: store cutoff: %w", err)
	}
	return res, nil
}

// scanSet calls fn with each page of set's members (SSCAN).
func (s *Store) scanSet(ctx context.Context, set string, fn func([]string) error) error {
	var cursor uint64
	for {
		members, next, err := s.o.Client.SScan(ctx, set, cursor, "", scanCount).Result()
		if err != nil {
			return fmt.Errorf("sweep: scan %s: %w", set, err)
		}
		if len(members) > 0 {
			if err := fn(members); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// trim deletes old minute fields from the hashes keys: the named fields in
// range mode, every field before cutoff in full mode.
func (s *Store) trim(ctx context.Context, keys, fields []string, cutoff int64, full bool, res *SweepResult) error {
	res.Keys += len(keys)
	cl := s.o.Client
	if !full {
		if len(fields) == 0 {
			return nil
		}
		per := max(1, hdelArgsMax/len(fields))
		for start := 0; start < len(keys); start += per {
			chunk := keys[start:min(start+per, len(keys))]
			cmds, err := cl.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range chunk {
					p.HDel(ctx, k, fields...)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("sweep: delete fields: %w", err)
			}
			for _, c := range cmds {
				res.Fields += c.(*redis.IntCmd).Val()
			}
		}
		return nil
	}
	for _, k := range keys {
		var (
			cursor uint64
			old    []string
		)
		for {
			kv, next, err := cl.HScan(ctx, k, cursor, "", scanCount).Result()
			if err != nil {
				return fmt.Errorf("sweep: scan %s: %w", k, err)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if m, err := strconv.ParseInt(kv[i], 10, 64); err == nil && m < cutoff {
					old = append(old, kv[i])
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
		for start := 0; start < len(old); start += scanCount {
			n, err := cl.HDel(ctx, k, old[start:min(start+scanCount, len(old))]...).Result()
			if err != nil {
				return fmt.Errorf("sweep: delete fields of %s: %w", k, err)
			}
			res.Fields += n
		}
	}
	return nil
}
