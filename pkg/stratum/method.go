package stratum

// Method identifies a Stratum V1 request method sent by a miner.
type Method uint8

// Request methods understood by the codec. A method not listed decodes as
// MethodUnknown; Request.MethodName still holds its name.
const (
	MethodUnknown             Method = iota
	MethodSubscribe                  // mining.subscribe
	MethodAuthorize                  // mining.authorize
	MethodSubmit                     // mining.submit
	MethodConfigure                  // mining.configure (BIP310)
	MethodSuggestDifficulty          // mining.suggest_difficulty
	MethodSuggestTarget              // mining.suggest_target
	MethodExtranonceSubscribe        // mining.extranonce.subscribe (NiceHash)
	MethodPing                       // mining.ping
	MethodGetTransactions            // mining.get_transactions
	MethodMultiVersion               // mining.multi_version (cgminer/bmminer)
	numMethods
)

var methodNames = [numMethods]string{
	MethodUnknown:             "unknown",
	MethodSubscribe:           "mining.subscribe",
	MethodAuthorize:           "mining.authorize",
	MethodSubmit:              "mining.submit",
	MethodConfigure:           "mining.configure",
	MethodSuggestDifficulty:   "mining.suggest_difficulty",
	MethodSuggestTarget:       "mining.suggest_target",
	MethodExtranonceSubscribe: "mining.extranonce.subscribe",
	MethodPing:                "mining.ping",
	MethodGetTransactions:     "mining.get_transactions",
	MethodMultiVersion:        "mining.multi_version",
}

// String returns the method's wire name, or "unknown" for MethodUnknown and
// values out of range. It does not allocate.
func (m Method) String() string {
	if m >= numMethods {
		return methodNames[MethodUnknown]
	}
	return methodNames[m]
}

// lookupMethod maps a decoded method name to its Method without allocating
// (the compiler does not copy for a switch on string(b)).
func lookupMethod(name []byte) Method {
	switch string(name) {
	case "mining.submit":
		return MethodSubmit
	case "mining.subscribe":
		return MethodSubscribe
	case "mining.authorize":
		return MethodAuthorize
	case "mining.configure":
		return MethodConfigure
	case "mining.suggest_difficulty":
		return MethodSuggestDifficulty
	case "mining.suggest_target":
		return MethodSuggestTarget
	case "mining.extranonce.subscribe":
		return MethodExtranonceSubscribe
	case "mining.ping":
		return MethodPing
	case "mining.get_transactions":
		return MethodGetTransactions
	case "mining.multi_version":
		return MethodMultiVersion
	}
	return MethodUnknown
}
