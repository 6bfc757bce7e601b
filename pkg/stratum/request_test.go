package stratum

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type submitGolden struct {
	Worker      string `json:"worker"`
	Job         string `json:"job"`
	EN2         string `json:"en2"`
	NTime       string `json:"ntime"`
	Nonce       string `json:"nonce"`
	VersionBits string `json:"version_bits,omitempty"`
}

// lineGolden is what testdata/lines.golden.json records for one line.
type lineGolden struct {
	ID     string         `json:"id,omitempty"` // raw JSON of the id
	Method string         `json:"method,omitempty"`
	Name   string         `json:"name,omitempty"`
	Params string         `json:"params,omitempty"` // raw params copy
	Submit *submitGolden  `json:"submit,omitempty"`
	Parsed map[string]any `json:"parsed,omitempty"` // the Parse* helper's view
	Error  string         `json:"error,omitempty"`
	HasID  bool           `json:"has_id,omitempty"`
	Reply  string         `json:"reply,omitempty"` // DecodeError.Reply().Message
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// parsedView runs the helper a gateway would use for the request's method.
func parsedView(r *Request) map[string]any {
	switch r.Method {
	case MethodSubmit:
		return nil
	case MethodSubscribe:
		ua, sid, err := ParseSubscribe(r.Params)
		return map[string]any{"user_agent": ua, "session_id": sid, "err": errString(err)}
	case MethodAuthorize:
		user, pass, err := ParseAuthorize(r.Params)
		return map[string]any{"user": user, "pass": pass, "err": errString(err)}
	case MethodConfigure:
		exts, opts, err := ParseConfigure(r.Params)
		return map[string]any{"extensions": exts, "options": opts, "err": errString(err)}
	case MethodSuggestDifficulty:
		d, err := ParseDifficulty(r.Params)
		return map[string]any{"difficulty": d, "err": errString(err)}
	}
	s, err := r.StringParams()
	return map[string]any{"strings": s, "err": errString(err)}
}

func goldenOf(line []byte) lineGolden {
	var r Request
	err := DecodeRequest(line, &r)
	var g lineGolden
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			panic(err)
		}
		g.Error, g.HasID, g.Reply = de.Reason, de.HasID, de.Reply().Message
		if de.HasID {
			g.ID = r.ID.String()
		}
		return g
	}
	g.ID, g.Method, g.Name = r.ID.String(), r.Method.String(), string(r.Name())
	if r.Method == MethodSubmit {
		s := &r.Submit
		g.Submit = &submitGolden{
			Worker: string(s.WorkerName()), Job: string(s.Job()), EN2: hex.EncodeToString(s.EN2()),
			NTime: fmt.Sprintf("%08x", s.NTime), Nonce: fmt.Sprintf("%08x", s.Nonce),
		}
		if s.HasVersionBits {
			g.Submit.VersionBits = fmt.Sprintf("%08x", s.VersionBits)
		}
	} else {
		g.Params = string(r.Params)
	}
	g.Parsed = parsedView(&r)
	return g
}

// TestCapturedLinesGolden decodes every captured line (see
// testdata/SOURCES.md) and compares the decoded fields, and what the Parse*
// helpers make of the params, with testdata/lines.golden.json. Run with
// -update to rewrite the golden file, then review the diff.
func TestCapturedLinesGolden(t *testing.T) {
	all := map[string]lineGolden{}
	for _, l := range readTestLines(t) {
		line, n, err := SplitLine(l.raw, DefaultMaxLine)
		require.NoError(t, err, l.name)
		require.Equal(t, len(l.raw), n, l.name)
		g := goldenOf(line)
		require.Equal(t, strings.HasPrefix(l.name, "err_"), g.Error != "", "%s: %s", l.name, g.Error)
		all[l.name] = g
	}
	got, err := json.MarshalIndent(all, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	path := filepath.Join("testdata", "lines.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

// TestDecodeCapturedSubmits checks the submit lines field by field, by hand,
// independently of the golden file.
func TestDecodeCapturedSubmits(t *testing.T) {
	tests := []struct {
		file        string
		id          string
		worker, job string
		en2         []byte
		ntime       uint32
		nonce       uint32
		version     uint32
		hasVersion  bool
	}{
		{"cgminer_submit", "5", "alice.rig01", "1a2b", []byte{0, 0, 0, 0, 0, 0, 0, 1}, 0x65f1a2b3, 0xb2957c02, 0, false},
		{"bmminer_submit_version", "7", "alice.s19j", "3f", []byte{0, 0, 0, 0, 0xa1, 0xb2, 0xc3, 0xd4}, 0x65f1a2b3, 0x0c3b99a1, 0x04d46000, true},
		{"esp_miner_submit", "17", "bc1qexampleexampleexampleexample.bitaxe", "6a3c1", []byte{1, 0, 0, 0, 0, 0, 0, 0}, 0x6650a1b2, 0x3e2f0180, 0x00b86000, true},
		{"whitespace_submit", `"s-1"`, "w.1", "AB", []byte{0xde, 0xad, 0xbe, 0xef}, 0x65f1a2b3, 0, 0, false},
		{"escaped_keys_submit", "9", `a"b\c/d`, "j", []byte{}, 0, 0xffffffff, 0x1fffe000, true},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "lines", tc.file+".txt"))
			require.NoError(t, err)
			line, _, err := SplitLine(raw, 0)
			require.NoError(t, err)
			var r Request
			require.NoError(t, DecodeRequest(line, &r))
			require.Equal(t, MethodSubmit, r.Method)
			require.Equal(t, "mining.submit", string(r.Name()))
			require.Equal(t, tc.id, r.ID.String())
			require.Equal(t, tc.worker, string(r.Submit.WorkerName()))
			require.Equal(t, tc.job, string(r.Submit.Job()))
			require.Equal(t, tc.en2, r.Submit.EN2())
			require.Equal(t, tc.ntime, r.Submit.NTime)
			require.Equal(t, tc.nonce, r.Submit.Nonce)
			require.Equal(t, tc.version, r.Submit.VersionBits)
			require.Equal(t, tc.hasVersion, r.Submit.HasVersionBits)
			require.Empty(t, r.Params)
		})
	}
}

func TestDecodeRequestForms(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		id     string
		method Method
		mname  string
		params string
	}{
		{"minimal", `{"id":1,"method":"mining.ping","params":[]}`, "1", MethodPing, "mining.ping", "[]"},
		{"any key order", `{"params":["ua"],"method":"mining.subscribe","id":2}`, "2", MethodSubscribe, "mining.subscribe", `["ua"]`},
		{"whitespace everywhere", " \t{ \"id\" : 3 , \"method\" : \"mining.authorize\" , \"params\" : [ \"u\" , \"p\" ] } \r", "3", MethodAuthorize, "mining.authorize", `[ "u" , "p" ]`},
		{"jsonrpc key skipped", `{"jsonrpc":"2.0","id":4,"method":"mining.configure","params":[["version-rolling"],{}]}`, "4", MethodConfigure, "mining.configure", `[["version-rolling"],{}]`},
		{"string id", `{"id":"x\"y","method":"mining.ping","params":[]}`, `"x\"y"`, MethodPing, "mining.ping", "[]"},
		{"unicode string id", `{"id":"é","method":"mining.ping","params":[]}`, `"é"`, MethodPing, "mining.ping", "[]"},
		{"negative float id", `{"id":-1.5e3,"method":"mining.ping","params":[]}`, "-1.5e3", MethodPing, "mining.ping", "[]"},
		{"null id", `{"id":null,"method":"mining.ping","params":[]}`, "null", MethodPing, "mining.ping", "[]"},
		{"absent id", `{"method":"mining.ping","params":[]}`, "null", MethodPing, "mining.ping", "[]"},
		{"absent params", `{"id":5,"method":"mining.extranonce.subscribe"}`, "5", MethodExtranonceSubscribe, "mining.extranonce.subscribe", "[]"},
		{"null params", `{"id":5,"method":"mining.extranonce.subscribe","params":null}`, "5", MethodExtranonceSubscribe, "mining.extranonce.subscribe", "[]"},
		{"escaped method", `{"id":6,"method":"mining\u002esuggest\u005fdifficulty","params":[1]}`, "6", MethodSuggestDifficulty, "mining.suggest_difficulty", "[1]"},
		{"slash escape", `{"id":6,"method":"mining\/x","params":[]}`, "6", MethodUnknown, "mining/x", "[]"},
		{"unknown method", `{"id":7,"method":"agent.subscribe","params":[{"a":[1,{"b":null}]},"]"]}`, "7", MethodUnknown, "agent.subscribe", `[{"a":[1,{"b":null}]},"]"]`},
		{"empty method", `{"id":8,"method":"","params":[]}`, "8", MethodUnknown, "", "[]"},
		{"other keys with nesting", `{"x":{"id":1,"method":"no"},"id":9,"y":[[],{}],"method":"mining.get_transactions","params":["1"]}`, "9", MethodGetTransactions, "mining.get_transactions", `["1"]`},
		{"suggest target", `{"id":10,"method":"mining.suggest_target","params":["00ff"]}`, "10", MethodSuggestTarget, "mining.suggest_target", `["00ff"]`},
		{"multi version", `{"id":11,"method":"mining.multi_version","params":[4]}`, "11", MethodMultiVersion, "mining.multi_version", `[4]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			require.NoError(t, DecodeRequest([]byte(tc.line), &r))
			require.Equal(t, tc.id, r.ID.String())
			require.Equal(t, tc.id == "null", r.ID.IsNull())
			require.Equal(t, tc.method, r.Method)
			require.Equal(t, tc.mname, string(r.Name()))
			require.Equal(t, tc.params, string(r.Params))
			require.Equal(t, Submit{}, r.Submit)
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		reason reason
		hasID  bool
		reply  *Error
	}{
		{"empty", ``, rNotObject, false, ErrMalformed},
		{"array", `[{"id":1}]`, rNotObject, false, ErrMalformed},
		{"string", `"mining.ping"`, rNotObject, false, ErrMalformed},
		{"unterminated object", `{"id":1,"method":"mining.ping"`, rSyntax, true, ErrMalformed},
		{"missing colon", `{"id" 1}`, rSyntax, false, ErrMalformed},
		{"trailing comma", `{"id":1,}`, rSyntax, true, ErrMalformed},
		{"single quotes", `{'id':1}`, rSyntax, false, ErrMalformed},
		{"bad escape", `{"id":1,"method":"a\x"}`, rSyntax, true, ErrMalformed},
		{"short unicode escape", `{"id":1,"method":"a\u12"}`, rSyntax, true, ErrMalformed},
		{"raw newline in string", "{\"id\":1,\"method\":\"a\nb\"}", rSyntax, true, ErrMalformed},
		{"leading zero number", `{"id":01,"method":"mining.ping"}`, rSyntax, false, ErrMalformed},
		{"number then letter", `{"id":1x,"method":"mining.ping"}`, rSyntax, false, ErrMalformed},
		{"null then letter", `{"id":nullx,"method":"mining.ping"}`, rSyntax, false, ErrMalformed},
		{"bare minus", `{"id":-,"method":"mining.ping"}`, rSyntax, false, ErrMalformed},
		{"dot without digits", `{"id":1.,"method":"mining.ping"}`, rSyntax, false, ErrMalformed},
		{"bad literal", `{"id":1,"method":"mining.ping","params":[tru]}`, rSyntax, true, ErrMalformed},
		{"trailing data", `{"id":1,"method":"mining.ping"} {}`, rTrailing, true, ErrMalformed},
		{"two objects", `{"id":1,"method":"mining.ping"}{"id":2}`, rTrailing, true, ErrMalformed},
		{"duplicate id", `{"id":1,"id":2,"method":"mining.ping"}`, rDuplicateKey, true, ErrMalformed},
		{"duplicate escaped id", `{"id":1,"\u0069d":2,"method":"mining.ping"}`, rDuplicateKey, true, ErrMalformed},
		{"duplicate params", `{"id":1,"method":"mining.ping","params":[],"params":[]}`, rDuplicateKey, true, ErrMalformed},
		{"id true", `{"id":true,"method":"mining.ping"}`, rIDType, false, ErrMalformed},
		{"id object", `{"id":{"a":1},"method":"mining.ping"}`, rIDType, false, ErrMalformed},
		{"id array", `{"id":[1],"method":"mining.ping"}`, rIDType, false, ErrMalformed},
		{"id invalid utf8", "{\"id\":\"\xff\",\"method\":\"mining.ping\"}", rIDType, false, ErrMalformed},
		{"id 65 bytes", `{"id":"` + strings.Repeat("a", 63) + `","method":"mining.ping"}`, rIDTooLong, false, ErrMalformed},
		{"id long number", `{"id":` + strings.Repeat("9", 65) + `,"method":"mining.ping"}`, rIDTooLong, false, ErrMalformed},
		{"method missing", `{"id":1,"params":[]}`, rMethodMissing, true, ErrMalformed},
		{"method missing no id", `{}`, rMethodMissing, false, ErrMalformed},
		{"method null", `{"id":1,"method":null}`, rMethodType, true, ErrMalformed},
		{"method array", `{"id":1,"method":["mining.ping"]}`, rMethodType, true, ErrMalformed},
		{"method too long", `{"id":1,"method":"` + strings.Repeat("m", 65) + `"}`, rMethodTooLong, true, ErrMalformed},
		{"method control char", `{"id":1,"method":"mining.ping\u0000"}`, rMethodChars, true, ErrMalformed},
		{"method non-ascii", `{"id":1,"method":"mining.pïng"}`, rMethodChars, true, ErrMalformed},
		{"params object", `{"id":1,"method":"mining.ping","params":{}}`, rParamsType, true, ErrMalformed},
		{"params string", `{"id":1,"method":"mining.ping","params":"x"}`, rParamsType, true, ErrMalformed},
		{"too deep", `{"id":1,"method":"x","params":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`, rTooDeep, true, ErrMalformed},
		{"submit without params", `{"id":1,"method":"mining.submit"}`, rSubmitFew, true, ErrMalformed},
		{"submit null params", `{"id":1,"method":"mining.submit","params":null}`, rSubmitFew, true, ErrMalformed},
		{"submit empty params", `{"id":1,"method":"mining.submit","params":[]}`, rSubmitFew, true, ErrMalformed},
		{"submit 4 params", `{"id":1,"method":"mining.submit","params":["w","j","00","00000000"]}`, rSubmitFew, true, ErrMalformed},
		{"submit 7 params", `{"id":1,"method":"mining.submit","params":["w","j","00","00000000","00000000","00000000",""]}`, rSubmitMany, true, ErrMalformed},
		{"worker number", `{"id":1,"method":"mining.submit","params":[1,"j","00","00000000","00000000"]}`, rWorker, true, ErrMalformed},
		{"worker too long", `{"id":1,"method":"mining.submit","params":["` + strings.Repeat("w", 129) + `","j","00","00000000","00000000"]}`, rWorker, true, ErrMalformed},
		{"worker surrogate pair", `{"id":1,"method":"mining.submit","params":["\ud83d\ude00","j","00","00000000","00000000"]}`, rWorker, true, ErrMalformed},
		{"job null", `{"id":1,"method":"mining.submit","params":["w",null,"00","00000000","00000000"]}`, rJobID, true, ErrMalformed},
		{"job too long", `{"id":1,"method":"mining.submit","params":["w","` + strings.Repeat("j", 65) + `","00","00000000","00000000"]}`, rJobID, true, ErrMalformed},
		{"en2 odd", `{"id":1,"method":"mining.submit","params":["w","j","0","00000000","00000000"]}`, rEN2, true, ErrBadExtranonce2},
		{"en2 not hex", `{"id":1,"method":"mining.submit","params":["w","j","0g","00000000","00000000"]}`, rEN2, true, ErrBadExtranonce2},
		{"en2 33 bytes", `{"id":1,"method":"mining.submit","params":["w","j","` + strings.Repeat("00", 33) + `","00000000","00000000"]}`, rEN2, true, ErrBadExtranonce2},
		{"en2 escaped", `{"id":1,"method":"mining.submit","params":["w","j","\u0030\u0030","00000000","00000000"]}`, rEN2, true, ErrBadExtranonce2},
		{"en2 number", `{"id":1,"method":"mining.submit","params":["w","j",0,"00000000","00000000"]}`, rEN2, true, ErrBadExtranonce2},
		{"ntime 7 digits", `{"id":1,"method":"mining.submit","params":["w","j","00","0000000","00000000"]}`, rNTime, true, ErrBadNTime},
		{"ntime 9 digits", `{"id":1,"method":"mining.submit","params":["w","j","00","000000000","00000000"]}`, rNTime, true, ErrBadNTime},
		{"ntime 0x", `{"id":1,"method":"mining.submit","params":["w","j","00","0x000000","00000000"]}`, rNTime, true, ErrBadNTime},
		{"ntime number", `{"id":1,"method":"mining.submit","params":["w","j","00",1700000000,"00000000"]}`, rNTime, true, ErrBadNTime},
		{"nonce bad", `{"id":1,"method":"mining.submit","params":["w","j","00","00000000","0000000z"]}`, rNonce, true, ErrMalformed},
		{"version bits null", `{"id":1,"method":"mining.submit","params":["w","j","00","00000000","00000000",null]}`, rVersionBits, true, ErrBadVersionBits},
		{"version bits short", `{"id":1,"method":"mining.submit","params":["w","j","00","00000000","00000000","1fffe00"]}`, rVersionBits, true, ErrBadVersionBits},
		{"submit params then bad json", `{"id":1,"method":"mining.submit","params":["w","j","00","00000000","00000000"],}`, rSyntax, true, ErrMalformed},
		{"id after error", `{"method":7,"id":1}`, rMethodType, false, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			err := DecodeRequest([]byte(tc.line), &r)
			var de *DecodeError
			require.True(t, errors.As(err, &de), "err = %v", err)
			require.Equal(t, reasons[tc.reason].text, de.Reason)
			require.Equal(t, tc.hasID, de.HasID)
			require.Same(t, tc.reply, de.Reply())
			require.Equal(t, "stratum: "+de.Reason, err.Error())
			if tc.hasID {
				require.Equal(t, "1", r.ID.String())
			}
		})
	}
}

func TestDecodeIDLimits(t *testing.T) {
	for n := 2; n <= MaxIDLen+1; n++ { // n = length of the id's JSON text
		raw := `"` + strings.Repeat("a", n-2) + `"`
		var r Request
		err := DecodeRequest([]byte(`{"id":`+raw+`,"method":"mining.ping"}`), &r)
		if n <= MaxIDLen {
			require.NoError(t, err, n)
			require.Equal(t, raw, string(r.ID.Append(nil)))
		} else {
			require.Error(t, err, n)
		}
	}
}

func TestDecodeRequestReuse(t *testing.T) {
	var r Request
	conf := []byte(`{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000"}]}`)
	require.NoError(t, DecodeRequest(conf, &r))
	require.Equal(t, `[["version-rolling"],{"version-rolling.mask":"1fffe000"}]`, string(r.Params))

	sub := AppendSubmitRequest(nil, 2, "w", "j", []byte{1}, 2, 3, 4, true)
	require.NoError(t, DecodeRequest(sub[:len(sub)-1], &r))
	require.Empty(t, r.Params)
	require.True(t, r.Submit.HasVersionBits)

	require.NoError(t, DecodeRequest([]byte(`{"id":3,"method":"mining.ping"}`), &r))
	require.Equal(t, Submit{}, r.Submit)
	require.Equal(t, "[]", string(r.Params))
	require.Equal(t, "mining.ping", string(r.Name()))

	// A failed decode leaves no stale method behind.
	require.Error(t, DecodeRequest([]byte(`{"id":4}`), &r))
	require.Equal(t, MethodUnknown, r.Method)
	require.Zero(t, r.MethodNameLen)
}

// TestDecodeStringMatchesEncodingJSON compares the scanner's string decoding,
// escapes and surrogates included, with encoding/json's.
func TestDecodeStringMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`""`, `"plain"`, `"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u4e2d"`,
		`"\ud83d\ude00"`, `"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`,
		`"\ud83d\ud83d\ude00"`, `"é中😀"`, `"\u0000"`,
	}
	for _, in := range inputs {
		var want string
		require.NoError(t, json.Unmarshal([]byte(in), &want), in)
		var buf [64]byte
		n, next, r := decodeString([]byte(in), 0, buf[:])
		require.Equal(t, rOK, r, in)
		require.Equal(t, len(in), next, in)
		require.Equal(t, want, string(buf[:n]), in)

		end, r := skipString([]byte(in), 0)
		require.Equal(t, rOK, r, in)
		require.Equal(t, len(in), end, in)
	}
	var small [3]byte
	_, _, r := decodeString([]byte(`"abcd"`), 0, small[:])
	require.Equal(t, rOverflow, r)
	_, _, r = decodeString([]byte(`"ab\u00e9"`), 0, small[:])
	require.Equal(t, rOverflow, r)
}

func TestMethodString(t *testing.T) {
	for m := MethodUnknown; m < numMethods; m++ {
		if m == MethodUnknown {
			require.Equal(t, "unknown", m.String())
			continue
		}
		require.Equal(t, m, lookupMethod([]byte(m.String())))
	}
	require.Equal(t, "mining.suggest_target", MethodSuggestTarget.String())
	require.Equal(t, "mining.extranonce.subscribe", MethodExtranonceSubscribe.String())
	require.Equal(t, "unknown", Method(200).String())
	require.Equal(t, MethodUnknown, lookupMethod([]byte("unknown")))
}

func TestDecodeRequestAllocs(t *testing.T) {
	submit5 := []byte(`{"params": ["alice.rig01", "1a2b", "0000000000000001", "65f1a2b3", "b2957c02"], "id": 4, "method": "mining.submit"}`)
	submit6 := []byte(`{"id":"x","method":"mining.submit","params":["a\u002eb","1a2b","0000000000000001","65f1a2b3","b2957c02","1fffe000"]}`)
	bad := []byte(`{"id":1,"method":"mining.submit","params":["w","j","00","0000000","00000000"]}`)
	conf := []byte(`{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":2}]}`)
	var r Request
	require.NoError(t, DecodeRequest(conf, &r)) // grows Params once
	for name, line := range map[string][]byte{"submit": submit5, "submit with version": submit6, "bad submit": bad, "configure": conf} {
		allocs := testing.AllocsPerRun(200, func() { _ = DecodeRequest(line, &r) })
		require.Zero(t, allocs, name)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, l := range readTestLines(f) {
		f.Add(bytes.TrimRight(l.raw, "\r\n"))
	}
	f.Add(AppendSubmitRequest(nil, 1, `w"\`, "j", []byte{0xff}, 1, 2, 3, true))
	f.Add([]byte(`{"id":1,"method":"x","params":[[[[{}]]]]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var r Request
		err := DecodeRequest(line, &r)
		if err != nil {
			var de *DecodeError
			require.True(t, errors.As(err, &de))
		} else {
			checkAgainstEncodingJSON(t, line, &r)
			if r.Method == MethodSubmit {
				s := r.Submit
				enc := AppendSubmitRequest(nil, 7, string(s.WorkerName()), string(s.Job()), s.EN2(),
					s.NTime, s.Nonce, s.VersionBits, s.HasVersionBits)
				var r2 Request
				require.NoError(t, DecodeRequest(enc, &r2), "%s", enc)
				require.Equal(t, s, r2.Submit)
				require.Equal(t, "7", r2.ID.String())
			}
		}

		// The line sent as a stream, whole or in two halves, decodes the same.
		stream := append(bytes.Clone(line), '\n')
		whole := &streamDecoder{max: DefaultMaxLine}
		whole.feed(stream)
		half := &streamDecoder{max: DefaultMaxLine}
		half.feed(stream[:len(stream)/2])
		half.feed(stream[len(stream)/2:])
		require.Equal(t, whole.err, half.err)
		requireSameDecodes(t, whole.out, half.out)
		if bytes.IndexByte(line, '\n') < 0 && whole.err == nil {
			trimmed := bytes.TrimSuffix(line, []byte("\r"))
			if len(bytes.Trim(trimmed, " \t\r")) > 0 {
				require.Len(t, whole.out, 1)
				require.Equal(t, decodeFresh(trimmed), whole.out[0])
			}
		}
	})
}

// checkAgainstEncodingJSON cross-checks a successful decode with
// encoding/json: the line is valid JSON and id, method and params agree.
func checkAgainstEncodingJSON(t *testing.T, line []byte, r *Request) {
	t.Helper()
	require.True(t, json.Valid(line), "%q", line)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(line, &m))
	if id, ok := m["id"]; ok && string(id) != "null" {
		require.Equal(t, string(id), r.ID.String())
	} else {
		require.True(t, r.ID.IsNull())
	}
	var method string
	require.NoError(t, json.Unmarshal(m["method"], &method))
	require.Equal(t, method, string(r.Name()))
	if r.Method != MethodSubmit {
		if p, ok := m["params"]; ok && string(p) != "null" {
			require.Equal(t, string(p), string(r.Params))
		} else {
			require.Equal(t, "[]", string(r.Params))
		}
	}
}
