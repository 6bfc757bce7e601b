package confutil

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ResolveSecret returns a secret given in one of three ways: directly as
// value, through the environment variable named env, or as the contents of
// the file at path file with trailing line breaks removed. Empty arguments
// count as not given.
//
// At most one of the three may be given; if none is, ResolveSecret returns ""
// and a nil error, and the caller decides whether the secret is required.
// An environment variable that is unset or empty, and a file that cannot be
// read or is empty, are errors. Error messages name the variable or the file
// but never contain the secret itself.
func ResolveSecret(value, env, file string) (string, error) {
	given := 0
	for _, s := range []string{value, env, file} {
		if s != "" {
			given++
		}
	}
	if given > 1 {
		return "", errors.New("secret given more than once: set only one of the value, the environment variable and the file")
	}

	switch {
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("secret environment variable %s is unset or empty", env)
		}
		return v, nil

	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			// *os.PathError carries the path and the reason, never the contents.
			return "", fmt.Errorf("read secret: %w", err)
		}
		v := strings.TrimRight(string(data), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", file)
		}
		return v, nil
	}
	return value, nil
}
