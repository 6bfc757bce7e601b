package confutil

import (
	"errors"
	"fmt"
)

// Problems collects validation problems so that a Validate method can report
// all of them at once instead of stopping at the first.
//
// The zero value is ready to use. A Problems is not safe for concurrent use.
//
//	func (c Config) Validate() error {
//		var p confutil.Problems
//		if c.Listen == "" {
//			p.Add("listen", "must be set")
//		}
//		p.Merge("log", c.Log.Validate())
//		return p.Err()
//	}
type Problems struct {
	errs []error
}

// Add records the problem "field: message", formatting message from format
// and args like fmt.Sprintf. An empty field records the message alone.
func (p *Problems) Add(field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	p.errs = append(p.errs, errors.New(msg))
}

// Merge records the problems of err, typically the result of a nested
// config's Validate, with each prefixed by "prefix.". Errors joined with
// errors.Join (anything with an Unwrap() []error method) are flattened into
// one problem per leaf, in order. A nil err records nothing; an empty prefix
// adds no prefix. The recorded problems wrap the originals, so errors.Is and
// errors.As still see them.
func (p *Problems) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			p.Merge(prefix, e)
		}
		return
	}
	if prefix != "" {
		err = fmt.Errorf("%s.%w", prefix, err)
	}
	p.errs = append(p.errs, err)
}

// Len returns the number of problems recorded so far.
func (p *Problems) Len() int { return len(p.errs) }

// Err returns nil when no problem was recorded, and otherwise all problems
// joined with errors.Join in the order they were recorded; its message has
// one problem per line.
func (p *Problems) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return errors.Join(p.errs...)
}
