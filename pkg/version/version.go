// Package version holds the build version, stamped at link time with
// -ldflags "-X github.com/hashgate/hashgate/pkg/version.Commit=<sha>".
package version

import "runtime/debug"

// Commit is the source revision, set by the linker; empty in plain builds.
var Commit string

// String returns the commit, the VCS revision recorded by the Go toolchain,
// or "dev".
func String() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "dev"
}
