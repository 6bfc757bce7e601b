package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/logx"
)

type cfg struct{ run string }

type quickApp struct{ err error }

func (a quickApp) Run(context.Context) error { return a.err }

func spec(loadErr, runErr error, dir string) Spec[cfg] {
	return Spec[cfg]{
		Name: "testd",
		Load: func(string) (cfg, error) { return cfg{run: dir}, loadErr },
		Common: func(c cfg) Common {
			return Common{Log: logx.DefaultConfig(), Instance: "t", RunDir: c.run}
		},
		New: func(cfg, *zap.Logger, zap.AtomicLevel) (App, error) { return quickApp{err: runErr}, nil },
	}
}

func TestCheckMode(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, Run(spec(nil, nil, t.TempDir()), "x.json", true, &out))
	require.Contains(t, out.String(), "is valid")
	err := Run(spec(errors.New("a: bad\nb: bad"), nil, t.TempDir()), "x.json", true, &out)
	require.ErrorContains(t, err, "has problems")
	require.Equal(t, 2, strings.Count(err.Error(), "bad"), "every problem is printed")
}

func TestRunWritesAndRemovesPIDFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Run(spec(nil, nil, dir), "x.json", false, os.Stdout))
	_, err := os.Stat(filepath.Join(dir, "testd.pid"))
	require.True(t, os.IsNotExist(err), "pid file removed on exit")
	err = Run(spec(nil, errors.New("boom"), dir), "x.json", false, os.Stdout)
	require.ErrorContains(t, err, "boom")
}
