package center

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashgate/hashgate/pkg/bus"
)

// Line renders an alert as one alert:message line:
//
//	<host>: [<level>] <file:line>: <message>[ (xN)] daemon=<d> instance=<i>[ <fields>]
//
// The caller part is left out when unknown, (xN) appears when the sender
// folded N > 1 occurrences into the alert, and daemon/instance when set.
// Line breaks are written as \n and other control characters as spaces, so
// a line never spans two.
func Line(a *bus.Alert) string {
	var b strings.Builder
	b.Grow(64 + len(a.Host) + len(a.Caller) + len(a.Message) + len(a.Fields))
	writeClean(&b, a.Host)
	b.WriteString(": [")
	writeClean(&b, a.Level)
	b.WriteString("] ")
	if a.Caller != "" {
		writeClean(&b, a.Caller)
		b.WriteString(": ")
	}
	writeClean(&b, a.Message)
	if a.Count > 1 {
		b.WriteString(" (x")
		b.WriteString(strconv.FormatUint(uint64(a.Count), 10))
		b.WriteByte(')')
	}
	if a.Daemon != "" {
		b.WriteString(" daemon=")
		writeClean(&b, a.Daemon)
	}
	if a.Instance != "" {
		b.WriteString(" instance=")
		writeClean(&b, a.Instance)
	}
	if a.Fields != "" {
		b.WriteByte(' ')
		writeClean(&b, a.Fields)
	}
	return b.String()
}

// writeClean writes s with line breaks escaped, other control characters
// as spaces and invalid UTF-8 as U+FFFD.
func writeClean(b *strings.Builder, s string) {
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case unicode.IsControl(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
}

// payload is the webhook body: "text" for Slack and Mattermost, the rest
// for anything that wants structure.
type payload struct {
	Text     string `json:"text"`
	Host     string `json:"host"`
	Daemon   string `json:"daemon"`
	Instance string `json:"instance"`
	Level    string `json:"level"`
	Time     string `json:"time"` // RFC 3339, UTC
	Count    uint32 `json:"count"`
	Caller   string `json:"caller"`
	Message  string `json:"message"`
}

func newPayload(a *bus.Alert, line string) payload {
	return payload{Text: line, Host: a.Host, Daemon: a.Daemon, Instance: a.Instance, Level: a.Level,
		Time: time.Unix(0, a.Time).UTC().Format(time.RFC3339Nano), Count: a.Count, Caller: a.Caller,
		Message: a.Message}
}
