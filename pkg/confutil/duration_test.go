package confutil_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/stretchr/testify/require"
)

func TestDurationUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string
	}{
		{name: "milliseconds", in: `"100ms"`, want: 100 * time.Millisecond},
		{name: "seconds", in: `"30s"`, want: 30 * time.Second},
		{name: "compound", in: `"1h30m"`, want: 90 * time.Minute},
		{name: "zero", in: `"0"`, want: 0},
		{name: "escaped string", in: `"1\u0073"`, want: time.Second},
		{name: "number", in: `30`, wantErr: `duration must be a string such as "30s" or "100ms", not number 30`},
		{name: "negative number", in: `-1`, wantErr: "not number -1"},
		{name: "bool", in: `true`, wantErr: "not boolean true"},
		{name: "object", in: `{"s": 1}`, wantErr: "not object"},
		{name: "negative", in: `"-5s"`, wantErr: `invalid duration "-5s": must not be negative`},
		{name: "no unit", in: `"30"`, wantErr: `invalid duration "30"`},
		{name: "empty", in: `""`, wantErr: `invalid duration ""`},
		{name: "garbage", in: `"soon"`, wantErr: `invalid duration "soon": want a value such as "30s"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d confutil.Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Zero(t, d, "failed decode must not change the value")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, d.D())
		})
	}
}

func TestDurationNullKeepsValue(t *testing.T) {
	d := confutil.Duration(time.Minute)
	require.NoError(t, json.Unmarshal([]byte(`null`), &d))
	require.Equal(t, time.Minute, d.D())
}

func TestDurationMarshalRoundTrip(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, `"0s"`},
		{100 * time.Millisecond, `"100ms"`},
		{90 * time.Second, `"1m30s"`},
		{36 * time.Hour, `"36h0m0s"`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			b, err := json.Marshal(confutil.Duration(tc.d))
			require.NoError(t, err)
			require.Equal(t, tc.want, string(b))
			require.Equal(t, tc.d.String(), confutil.Duration(tc.d).String())

			var back confutil.Duration
			require.NoError(t, json.Unmarshal(b, &back))
			require.Equal(t, tc.d, back.D())
		})
	}
}
