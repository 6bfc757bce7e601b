package confutil

// stripComments returns a copy of data with JSONC comments blanked out.
//
// Line comments ("// ...") run to the end of the line; block comments
// ("/* ... */") may span lines. Every byte of a comment except '\n' and '\r'
// becomes a space, so the result has the same length and the same line
// structure as data and every offset means the same position in both. Comment
// markers inside JSON strings are left alone; a backslash inside a string
// escapes the next byte, so "\"//" does not start a comment.
//
// If a block comment is not terminated, stripComments returns the offset of
// its opening "/*" and ok == false; the returned slice is then unspecified.
func stripComments(data []byte) (out []byte, badOffset int, ok bool) {
	out = make([]byte, len(data))
	copy(out, data)

	inString := false
	for i := 0; i < len(out); i++ {
		c := out[i]

		// Inside a string only the closing quote and escapes matter.
		if inString {
			switch c {
			case '\\':
				i++ // skip the escaped byte, whatever it is
			case '"':
				inString = false
			}
			continue
		}

		switch {
		case c == '"':
			inString = true

		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for i < len(out) && out[i] != '\n' {
				if out[i] != '\r' {
					out[i] = ' '
				}
				i++
			}
			// The loop stops on the newline, which the outer i++ steps over.

		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			start := i
			out[i], out[i+1] = ' ', ' '
			i += 2
			closed := false
			for i < len(out) {
				if out[i] == '*' && i+1 < len(out) && out[i+1] == '/' {
					out[i], out[i+1] = ' ', ' '
					i++ // now on the '/', the outer i++ moves past it
					closed = true
					break
				}
				if out[i] != '\n' && out[i] != '\r' {
					out[i] = ' '
				}
				i++
			}
			if !closed {
				return out, start, false
			}
		}
	}
	return out, 0, true
}
