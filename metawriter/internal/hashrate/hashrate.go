// Package hashrate is the analysts' command
//
//	metawriter hashrate -c conf/metawriter.json --user U [--worker W]
//	    [--minutes 60] [--coin btc] [--until TIME] [--json]
//
// It reads only Redis, exactly as documented in DESIGN.md §4 (HMGET of the
// minute fields of <coin>:s:<user>[:<worker>], <coin>:p:<user>[:<worker>]
// and <coin>:s:<user>[:<worker>]:reject), and prints per minute and on
// average the accepted shares, rejected shares, accepted difficulty and
// hashrate (difficulty × 2^32 / 60 s). It is the proof that the layout is
// usable as documented.
package hashrate

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashgate/hashgate/metawriter/internal/config"
	"github.com/hashgate/hashgate/metawriter/internal/layout"
	"github.com/hashgate/hashgate/metawriter/internal/redisconn"
	"github.com/hashgate/hashgate/pkg/confutil"
)

// HashesPerDiff1 is the expected number of hashes per share of difficulty 1.
const HashesPerDiff1 = 1 << 32

// Minute is one minute of the report.
type Minute struct {
	Minute     int64   `json:"minute"` // unix time, multiple of 60
	Time       string  `json:"time"`   // the same in RFC 3339, UTC
	Shares     uint64  `json:"shares"`
	Rejects    uint64  `json:"rejects"`
	Difficulty float64 `json:"difficulty"` // accepted difficulty summed
	Hashrate   float64 `json:"hashrate"`   // H/s
}

// Average is the mean over the report's minutes (minutes without shares
// count as zero).
type Average struct {
	Shares     float64 `json:"shares"`
	Rejects    float64 `json:"rejects"`
	Difficulty float64 `json:"difficulty"`
	Hashrate   float64 `json:"hashrate"`
}

// Report is the command's result.
type Report struct {
	Coin    string   `json:"coin"`
	User    string   `json:"user"`
	Worker  string   `json:"worker,omitempty"`
	From    int64    `json:"from"`  // first minute
	Until   int64    `json:"until"` // last minute
	Minutes []Minute `json:"minutes"`
	Average Average  `json:"average"`
}

// Query selects what to read.
type Query struct {
	Coin, User, Worker string
	// Minutes is how many minutes, ending with Until.
	Minutes int
	// Until is the last minute shown (rounded down to a minute).
	Until time.Time
}

// Read builds the report from Redis.
func Read(ctx context.Context, rdb *redis.Client, q Query) (*Report, error) {
	until := q.Until.Unix() / 60 * 60
	from := until - int64(q.Minutes-1)*60
	fields := make([]string, q.Minutes)
	for i := range fields {
		fields[i] = layout.Field(from + int64(i)*60)
	}
	pipe := rdb.Pipeline()
	sharesCmd := pipe.HMGet(ctx, layout.Shares(q.Coin, q.User, q.Worker), fields...)
	powCmd := pipe.HMGet(ctx, layout.Pow(q.Coin, q.User, q.Worker), fields...)
	rejCmd := pipe.HMGet(ctx, layout.Rejects(q.Coin, q.User, q.Worker), fields...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read redis: %w", err)
	}
	rep := &Report{Coin: q.Coin, User: q.User, Worker: q.Worker, From: from, Until: until}
	var tot Minute
	for i := range fields {
		m := Minute{Minute: from + int64(i)*60}
		m.Time = time.Unix(m.Minute, 0).UTC().Format(time.RFC3339)
		var err error
		if m.Shares, err = uintAt(sharesCmd.Val(), i); err != nil {
			return nil, err
		}
		if m.Rejects, err = uintAt(rejCmd.Val(), i); err != nil {
			return nil, err
		}
		if m.Difficulty, err = floatAt(powCmd.Val(), i); err != nil {
			return nil, err
		}
		m.Hashrate = Rate(m.Difficulty, 60)
		tot.Shares += m.Shares
		tot.Rejects += m.Rejects
		tot.Difficulty += m.Difficulty
		rep.Minutes = append(rep.Minutes, m)
	}
	n := float64(q.Minutes)
	rep.Average = Average{
		Shares: float64(tot.Shares) / n, Rejects: float64(tot.Rejects) / n,
		Difficulty: tot.Difficulty / n, Hashrate: Rate(tot.Difficulty, n*60),
	}
	return rep, nil
}

// Rate is the hashrate in H/s of diff accepted difficulty over seconds.
func Rate(diff, seconds float64) float64 { return diff * HashesPerDiff1 / seconds }

func uintAt(vals []any, i int) (uint64, error) {
	s, ok := vals[i].(string)
	if !ok {
		return 0, nil // field absent
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field value %q is not a count", s)
	}
	return v, nil
}

func floatAt(vals []any, i int) (float64, error) {
	s, ok := vals[i].(string)
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("field value %q is not a number", s)
	}
	return v, nil
}

// SI formats a hashrate with an SI prefix, e.g. "1.23 TH/s".
func SI(hps float64) string {
	units := []string{"H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"}
	i := 0
	for math.Abs(hps) >= 1000 && i < len(units)-1 {
		hps /= 1000
		i++
	}
	return strconv.FormatFloat(hps, 'f', 2, 64) + " " + units[i]
}

// WriteTable prints the report as a table.
func WriteTable(w io.Writer, r *Report) error {
	who := r.User
	if r.Worker != "" {
		who += "." + r.Worker
	}
	fmt.Fprintf(w, "%s %s, %d minutes from %s to %s UTC\n", r.Coin, who, len(r.Minutes),
		time.Unix(r.From, 0).UTC().Format("2006-01-02 15:04"), time.Unix(r.Until, 0).UTC().Format("2006-01-02 15:04"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "minute (UTC)\tshares\trejects\tdifficulty\thashrate\t")
	for _, m := range r.Minutes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t\n", time.Unix(m.Minute, 0).UTC().Format("2006-01-02 15:04"),
			m.Shares, m.Rejects, strconv.FormatFloat(m.Difficulty, 'f', -1, 64), SI(m.Hashrate))
	}
	a := r.Average
	fmt.Fprintf(tw, "average\t%.2f\t%.2f\t%.2f\t%s\t\n", a.Shares, a.Rejects, a.Difficulty, SI(a.Hashrate))
	return tw.Flush()
}

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

// Main runs the command with args (after "hashrate") and returns the exit
// status: 0 on success, 1 on a failure, 2 on a usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	err := run(args, stdout, stderr, time.Now)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "metawriter hashrate:", err)
		return 1
	}
}

func run(args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("metawriter hashrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "conf/metawriter.json", "config file (only its redis section is used)")
	user := fs.String("user", "", "user name (required)")
	worker := fs.String("worker", "", "worker name; empty: the user's total")
	minutes := fs.Int("minutes", 60, "number of minutes, 1..43200")
	coin := fs.String("coin", "btc", "coin")
	until := fs.String("until", "", "last minute shown, RFC 3339 or unix seconds; default: the last complete minute")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: metawriter hashrate -c conf/metawriter.json --user U [--worker W] [--minutes 60] [--coin btc] [--until TIME] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "metawriter hashrate: "+format+"\n", a...)
		fs.Usage()
		return errUsage
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case *user == "":
		return bad("--user is required")
	case *minutes < 1 || *minutes > 43200:
		return bad("--minutes must be 1..43200")
	case !layout.ValidCoin(*coin):
		return bad("--coin %q is not a coin name", *coin)
	}
	last := now().Add(-time.Minute) // the current minute is still open
	if *until != "" {
		t, err := parseTime(*until)
		if err != nil {
			return bad("--until: %v", err)
		}
		last = t
	}

	cfg, err := config.Read(*cfgPath)
	if err != nil {
		return err
	}
	var p confutil.Problems
	cfg.Redis.Validate(&p, "redis")
	if err := p.Err(); err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	rdb, err := redisconn.New(cfg.Redis, "metawriter-hashrate", 1)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.Redis.Timeout.D())
	defer cancel()
	rep, err := Read(ctx, rdb, Query{Coin: *coin, User: *user, Worker: *worker, Minutes: *minutes, Until: last})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return WriteTable(stdout, rep)
}

// parseTime reads RFC 3339 or unix seconds.
func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor unix seconds", s)
	}
	return t, nil
}
