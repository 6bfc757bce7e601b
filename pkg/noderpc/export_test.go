package noderpc

// SetMaxResponseBytes lowers c's response size cap so tests need not send
// 64 MiB.
func SetMaxResponseBytes(c *Client, n int64) { c.maxBody = n }
