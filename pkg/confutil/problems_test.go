package confutil_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/stretchr/testify/require"
)

func TestProblemsEmpty(t *testing.T) {
	var p confutil.Problems
	require.NoError(t, p.Err())
	require.Zero(t, p.Len())
	p.Merge("log", nil)
	require.NoError(t, p.Err())
}

func TestProblems(t *testing.T) {
	nested := func() error {
		var p confutil.Problems
		p.Add("level", "unknown level %q", "loud")
		p.Add("format", "must be json or console")
		return p.Err()
	}

	tests := []struct {
		name  string
		build func(p *confutil.Problems)
		want  []string
	}{
		{
			name: "add keeps order and formats",
			build: func(p *confutil.Problems) {
				p.Add("listen", "must be set")
				p.Add("workers", "must be at least %d, got %d", 1, 0)
				p.Add("", "no field")
			},
			want: []string{"listen: must be set", "workers: must be at least 1, got 0", "no field"},
		},
		{
			name: "merge flattens joined errors",
			build: func(p *confutil.Problems) {
				p.Add("listen", "must be set")
				p.Merge("log", nested())
			},
			want: []string{"listen: must be set", `log.level: unknown level "loud"`, "log.format: must be json or console"},
		},
		{
			name: "merge nests prefixes",
			build: func(p *confutil.Problems) {
				var mid confutil.Problems
				mid.Merge("log", nested())
				p.Merge("gateway", mid.Err())
			},
			want: []string{`gateway.log.level: unknown level "loud"`, "gateway.log.format: must be json or console"},
		},
		{
			name: "merge single error",
			build: func(p *confutil.Problems) {
				p.Merge("admin", errors.New("listen: bad port"))
			},
			want: []string{"admin.listen: bad port"},
		},
		{
			name: "merge without prefix",
			build: func(p *confutil.Problems) {
				p.Merge("", nested())
			},
			want: []string{`level: unknown level "loud"`, "format: must be json or console"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p confutil.Problems
			tc.build(&p)
			err := p.Err()
			require.Error(t, err)
			require.Equal(t, len(tc.want), p.Len())

			joined, ok := err.(interface{ Unwrap() []error })
			require.True(t, ok, "Err must return an errors.Join value")
			var got []string
			for _, e := range joined.Unwrap() {
				got = append(got, e.Error())
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestProblemsMergeKeepsErrorChain(t *testing.T) {
	var p confutil.Problems
	p.Merge("tls", errors.Join(fmt.Errorf("cert: %w", fs.ErrNotExist)))
	require.ErrorIs(t, p.Err(), fs.ErrNotExist)
	require.EqualError(t, p.Err(), "tls.cert: file does not exist")
}
