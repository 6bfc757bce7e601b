package bus

// Alerts are not per coin: every daemon publishes them on
// <prefix>.all.alert (AlertSubject), whatever coin it serves, and
// alertcenter subscribes to that one subject. "all" is reserved as a coin
// token for such cluster-wide topics; no coin may be named "all".
const AlertCoin = "all"

// AlertSubject returns <prefix>.all.alert, the subject alerts travel on.
func AlertSubject(prefix string) string {
	return Subject(prefix, AlertCoin, TopicAlert)
}

// Limits on the text fields of an Alert. Senders clip to them (pkg/alert
// does); a decoder refuses longer fields with ErrTooLong.
const (
	MaxAlertIdent   = 256 // Host, Daemon, Instance, Level
	MaxAlertCaller  = 1024
	MaxAlertMessage = 8192
	MaxAlertFields  = 4096
)

// Alert is one error-or-worse log entry of a daemon, shipped to alertcenter
// over core NATS (fire and forget: a lost alert is acceptable, a blocked
// daemon is not).
//
// Wire format after the preamble (type 7): Host, Daemon, Instance, Level
// (length-prefixed strings), Time (int64), Caller, Message, Fields
// (length-prefixed strings), Count (uint32).
type Alert struct {
	// Host is the sender's host name (os.Hostname), the label alertcenter
	// puts first on each line.
	Host string
	// Daemon and Instance identify the sending process ("gateway",
	// "gw-1").
	Daemon, Instance string
	// Level is the zap level name: "error", "dpanic", "panic" or "fatal".
	Level string
	// Time is when the (last folded) entry was logged, in unix nanoseconds.
	Time int64
	// Caller is file:line of the log call (short form, "app/app.go:42");
	// empty when unknown.
	Caller string
	// Message is the log message.
	Message string
	// Fields are the entry's fields (logger name, With fields, call
	// fields) as compact key=value pairs separated by spaces, clipped to
	// MaxAlertFields.
	Fields string
	// Count is how many occurrences this alert stands for: 1, or more when
	// the sender's de-duplication folded repeats of the same caller and
	// message into it.
	Count uint32
}

// Marshal encodes the alert.
func (a *Alert) Marshal() []byte {
	e := newEncoder(TypeAlert, 48+len(a.Host)+len(a.Daemon)+len(a.Instance)+len(a.Level)+
		len(a.Caller)+len(a.Message)+len(a.Fields))
	e.str(a.Host)
	e.str(a.Daemon)
	e.str(a.Instance)
	e.str(a.Level)
	e.i64(a.Time)
	e.str(a.Caller)
	e.str(a.Message)
	e.str(a.Fields)
	e.u32(a.Count)
	return e.b
}

// Unmarshal decodes an alert, replacing every field of a.
func (a *Alert) Unmarshal(b []byte) error {
	d := newDecoder(b, TypeAlert)
	var out Alert
	out.Host = d.Str(0, MaxAlertIdent, "host")
	out.Daemon = d.Str(0, MaxAlertIdent, "daemon")
	out.Instance = d.Str(0, MaxAlertIdent, "instance")
	out.Level = d.Str(0, MaxAlertIdent, "level")
	out.Time = d.I64()
	out.Caller = d.Str(0, MaxAlertCaller, "caller")
	out.Message = d.Str(0, MaxAlertMessage, "message")
	out.Fields = d.Str(0, MaxAlertFields, "fields")
	out.Count = d.U32()
	if err := d.Finish(); err != nil {
		return err
	}
	*a = out
	return nil
}
