package bus

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleAlert() *Alert {
	return &Alert{Host: "pool-eu-1", Daemon: "jobmaster", Instance: "jm-1", Level: "fatal",
		Time: 1713571767123456789, Caller: "app/app.go:212", Message: "disk on fire",
		Fields: `logger=engine node=node1 error="connection refused"`, Count: 3}
}

// TestAlertGolden pins the alert wire format (testdata/alert.hex; rewrite
// with -update) and checks every truncation fails.
func TestAlertGolden(t *testing.T) {
	a := sampleAlert()
	enc := a.Marshal()
	path := filepath.Join("testdata", "alert.hex")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(enc)+"\n"), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, strings.TrimSpace(string(want)), hex.EncodeToString(enc))

	var got Alert
	require.NoError(t, got.Unmarshal(enc))
	require.Equal(t, a, &got)

	typ, err := PeekType(enc)
	require.NoError(t, err)
	require.Equal(t, TypeAlert, typ)
	require.Equal(t, "alert", typ.String())

	for i := 0; i < len(enc); i++ {
		require.Error(t, (&Alert{}).Unmarshal(enc[:i]), "cut at %d", i)
	}
	require.ErrorIs(t, (&Alert{}).Unmarshal(append(enc, 0)), ErrTrail)
	require.ErrorIs(t, (&Alert{}).Unmarshal(sampleJob().Marshal()), ErrType)
	require.ErrorIs(t, (&Job{}).Unmarshal(enc), ErrType)
}

func TestAlertLimits(t *testing.T) {
	a := sampleAlert()
	a.Message = strings.Repeat("m", MaxAlertMessage)
	a.Fields = strings.Repeat("f", MaxAlertFields)
	a.Caller = strings.Repeat("c", MaxAlertCaller)
	var got Alert
	require.NoError(t, got.Unmarshal(a.Marshal()), "fields at the limit decode")
	require.Equal(t, a, &got)

	for _, mutate := range []func(*Alert){
		func(a *Alert) { a.Message += "x" },
		func(a *Alert) { a.Fields += "x" },
		func(a *Alert) { a.Caller += "x" },
		func(a *Alert) { a.Host = strings.Repeat("h", MaxAlertIdent+1) },
	} {
		b := *a
		mutate(&b)
		require.ErrorIs(t, (&Alert{}).Unmarshal(b.Marshal()), ErrTooLong)
	}

	// The decoded alert does not alias the input.
	enc := sampleAlert().Marshal()
	require.NoError(t, got.Unmarshal(enc))
	for i := range enc {
		enc[i] = 0
	}
	require.Equal(t, sampleAlert(), &got)
}

func TestAlertSubject(t *testing.T) {
	require.Equal(t, "hashgate.all.alert", AlertSubject("hashgate"))
	require.Equal(t, Subject("hashgate", AlertCoin, TopicAlert), AlertSubject("hashgate"))
}

func FuzzAlert(f *testing.F) {
	f.Add(sampleAlert().Marshal())
	f.Add((&Alert{}).Marshal())
	f.Add([]byte("hg\x01\x07"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Alert
		if a.Unmarshal(b) != nil {
			return
		}
		var c Alert
		require.NoError(t, c.Unmarshal(a.Marshal()))
		require.Equal(t, a, c)
	})
}

func BenchmarkAlertMarshal(b *testing.B) {
	a := sampleAlert()
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Marshal()
	}
}
