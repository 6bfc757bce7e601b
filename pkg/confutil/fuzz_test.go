package confutil_test

import (
	"testing"

	"github.com/hashgate/hashgate/pkg/confutil"
)

// fuzzConfig is a small struct with the shapes config files use.
type fuzzConfig struct {
	Name    string            `json:"name"`
	Port    int               `json:"port"`
	Ratio   float64           `json:"ratio"`
	On      bool              `json:"on"`
	Timeout confutil.Duration `json:"timeout"`
	Inner   *struct {
		URL  string   `json:"url"`
		Tags []string `json:"tags"`
	} `json:"inner"`
	Items []struct {
		ID int `json:"id"`
	} `json:"items"`
	Labels map[string]int `json:"labels"`
	Any    any            `json:"any"`
}

// FuzzDecode checks that Decode never panics and that every error it returns
// can be printed.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"name": "a", "port": 1, "ratio": 0.5, "on": true, "timeout": "1s"}`,
		"// comment\n{\"name\": \"http://x//y\" /* c */}",
		`{"inner": {"url": "${HOME:-/root}", "tags": ["a", "b"]}, "items": [{"id": 1}]}`,
		`{"labels": {"a": 1}, "any": [1, {"x": null}], "name": "$$"}`,
		`{"nmae": 1}`,
		`{"items": [{"id": "x"}]}`,
		`{"timeout": 5}`,
		`{"name": "\"/*"} /* open`,
		`{"name": "${1}"}`,
		`{} {}`,
		`[`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg fuzzConfig
		if err := confutil.Decode(data, &cfg); err != nil {
			_ = err.Error()
		}
	})
}
