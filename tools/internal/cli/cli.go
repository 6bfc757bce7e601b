// Package cli is hgminer's command line: the subcommands, their flags,
// the logger and the signal context. main only calls Run.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/lifecycle"
	"github.com/hashgate/hashgate/pkg/logx"
	"github.com/hashgate/hashgate/pkg/version"
	"github.com/hashgate/hashgate/tools/internal/load"
	"github.com/hashgate/hashgate/tools/internal/miner"
	"github.com/hashgate/hashgate/tools/internal/sconn"
)

// ErrUsage is returned for a bad command line (after the usage was
// printed); main exits with status 2.
var ErrUsage = errors.New("usage")

const usage = `hgminer: Stratum V1 test miner and load generator for hashgate

Usage:
  hgminer mine -url stratum+tcp://HOST:PORT -user USER.WORKER [flags]
        CPU miner: real shares and, at regtest difficulty, real blocks.
  hgminer load -url stratum+tcp://HOST:PORT -conns N [flags]
        Load generator: N connections over -procs processes, optional valid
        shares, and a report (connect time, notify fan-out, submit latency,
        accepted shares/s, the gateway's CPU and RSS).
  hgminer version

Run "hgminer mine -h" or "hgminer load -h" for the flags.
`

// Run runs the command line args (without the program name).
func Run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ErrUsage
	}
	switch args[0] {
	case "mine":
		return runMine(args[1:], stderr)
	case "load":
		return runLoad(args[1:], stdout, stderr)
	case "load-worker":
		return runLoadWorker(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "hgminer", version.String())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "hgminer: unknown command %q\n\n%s", args[0], usage)
	return ErrUsage
}

// logFlags are the logging flags every subcommand has.
type logFlags struct {
	level, format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "json", "log format: json or console")
}

func (l *logFlags) args() []string {
	return []string{"-log-level", l.level, "-log-format", l.format}
}

func (l *logFlags) logger(instance string) (*zap.Logger, error) {
	lg, _, err := logx.New(logx.Config{Level: l.level, Format: l.format}, "hgminer", instance)
	return lg, err
}

// parse parses fs, printing errors and usage to stderr.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return ErrUsage
	}
	return nil
}

func runMine(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("hgminer mine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		url     = fs.String("url", "", "pool, stratum+tcp://host:port (required)")
		user    = fs.String("user", "", "worker name, user.worker (required)")
		pass    = fs.String("pass", "x", "worker password")
		threads = fs.Int("threads", 1, "hashing goroutines")
		vr      = fs.Bool("version-rolling", false, "negotiate BIP310 version rolling and roll version bits")
		suggest = fs.Float64("suggest-diff", 0, "send mining.suggest_difficulty with this difficulty (0: none)")
		hrate   = fs.Float64("rate", 200000, "maximum hashes per second over all threads (0: unbounded)")
		srate   = fs.Float64("share-rate", 5, "maximum shares submitted per second (0: unbounded); at regtest difficulty every other hash is a block")
		every   = fs.Duration("stats-every", 5*time.Second, "interval of the statistics log line")
		lf      logFlags
	)
	lf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	addr, err := sconn.ParseURL(*url)
	if err != nil || *user == "" || *threads < 1 || *hrate < 0 || *srate < 0 || *suggest < 0 {
		fmt.Fprintln(stderr, "hgminer mine: need -url stratum+tcp://host:port, -user, -threads >= 1, non-negative rates")
		fs.Usage()
		return ErrUsage
	}
	lg, err := lf.logger(*user)
	if err != nil {
		return err
	}
	defer lg.Sync() //nolint:errcheck // stderr sync fails on terminals
	ctx, stop := lifecycle.SignalContext()
	defer stop()
	m := miner.New(miner.Config{Addr: addr, User: *user, Pass: *pass, Threads: *threads, VersionRolling: *vr,
		SuggestDiff: *suggest, Rate: *hrate, ShareRate: *srate, StatsEvery: *every}, lg)
	return m.Run(ctx)
}

func runLoad(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hgminer load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg     load.Config
		url     = fs.String("url", "", "gateway, stratum+tcp://host:port (required)")
		src     = fs.String("src", "auto", `source addresses, e.g. "127.0.0.2-127.0.0.9" or "10.0.0.1,10.0.0.2"; "auto": 127.0.0.2-127.0.0.9 for a loopback gateway; "none": the kernel chooses`)
		pid     = fs.String("pid", "", "gateway pid for /proc CPU and RSS readings, or @FILE to read it from a pid file (default: the admin /metrics process figures)")
		report  = fs.String("report", "text", "report format: text or json")
		noKTS   = fs.Bool("user-timestamps", false, "time receipts with time.Now() after the read instead of the kernel's receive time")
		genEvry = fs.Duration("generate-every", 0, "call generate 1 on -generate-url this often during the run, so clean jobs arrive")
		lf      logFlags
	)
	fs.IntVar(&cfg.Conns, "conns", 100, "connections in total")
	fs.IntVar(&cfg.Procs, "procs", 1, fmt.Sprintf("worker processes (each holds conns/procs connections, at most %d)", load.MaxConnsPerProc))
	fs.StringVar(&cfg.UserPrefix, "user-prefix", "load", "workers are named <prefix>.<index>")
	fs.StringVar(&cfg.Pass, "pass", "x", "worker password")
	fs.Float64Var(&cfg.ShareRate, "share-rate", 0, "valid shares per second per connection (0: idle connections)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "measured run after everyone is connected")
	fs.StringVar(&cfg.AdminURL, "admin", "", "gateway admin base URL, e.g. http://127.0.0.1:PORT (for /metrics)")
	fs.StringVar(&cfg.GenerateURL, "generate-url", "", "btcd RPC URL with credentials, http://user:pass@127.0.0.1:PORT")
	fs.Float64Var(&cfg.SuggestDiff, "suggest-diff", 1e-12, "mining.suggest_difficulty sent by every connection (the gateway clamps it to vardiff.min; 0: none)")
	fs.BoolVar(&cfg.VersionRolling, "version-rolling", true, "negotiate version rolling and roll version bits in shares")
	fs.BoolVar(&cfg.AllowBlocks, "allow-blocks", false, "also submit shares that meet the network target (regtest: about half of them)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 2*time.Minute, "bound on the connect phase")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 60*time.Second, "bound on one connection's dial, subscribe, authorize and first job")
	fs.IntVar(&cfg.DialParallel, "dial-parallel", 512, "connections being set up at once, per process")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 0, "new connections per second over all processes (0: unbounded)")
	lf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.Addr, err = sconn.ParseURL(*url); err != nil {
		fmt.Fprintf(stderr, "hgminer load: %v\n", err)
		return ErrUsage
	}
	if cfg.Sources, err = load.ParseSources(*src, cfg.Addr); err != nil {
		fmt.Fprintf(stderr, "hgminer load: -src: %v\n", err)
		return ErrUsage
	}
	if cfg.PID, err = parsePID(*pid); err != nil {
		fmt.Fprintf(stderr, "hgminer load: -pid: %v\n", err)
		return ErrUsage
	}
	if *report != "text" && *report != "json" {
		fmt.Fprintln(stderr, "hgminer load: -report must be text or json")
		return ErrUsage
	}
	cfg.GenerateEvery = *genEvry
	cfg.KernelTimestamps = !*noKTS
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "hgminer load: %v\n", err)
		return ErrUsage
	}
	if cfg.Exe, err = os.Executable(); err != nil && cfg.Procs > 1 {
		return fmt.Errorf("find own executable for -procs: %w", err)
	}
	lg, err := lf.logger("load")
	if err != nil {
		return err
	}
	defer lg.Sync() //nolint:errcheck // stderr sync fails on terminals
	ctx, stop := lifecycle.SignalContext()
	defer stop()
	rep, err := load.Run(ctx, cfg, lg, lf.args())
	if err != nil {
		return err
	}
	if *report == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.WriteText(stdout)
	return nil
}

// parsePID reads "", "1234" or "@/path/to/gateway.pid".
func parsePID(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	if path, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s is empty", path)
		}
		s = f[0]
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%q is not a pid", s)
	}
	return pid, nil
}

// runLoadWorker is the hidden subcommand the load parent starts: commands
// on stdin, JSON events on stdout, logs on stderr.
func runLoadWorker(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hgminer load-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	spec := fs.String("spec", "", "worker spec (JSON, from the parent)")
	var lf logFlags
	lf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	var ws load.WorkerSpec
	if err := json.Unmarshal([]byte(*spec), &ws); err != nil {
		return fmt.Errorf("load-worker: -spec: %w", err)
	}
	lg, err := lf.logger("load-worker-" + strconv.Itoa(ws.Index))
	if err != nil {
		return err
	}
	defer lg.Sync() //nolint:errcheck // stderr sync fails on terminals
	// Ctrl-C reaches the whole process group: the parent handles it and
	// tells the workers to stop, so that the report still comes out.
	signal.Ignore(os.Interrupt)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	return load.RunWorker(ctx, ws, os.Stdin, stdout, lg)
}
