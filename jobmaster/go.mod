module github.com/hashgate/hashgate/jobmaster

go 1.26.0

require github.com/hashgate/hashgate/pkg v0.0.0

replace github.com/hashgate/hashgate/pkg => ../pkg
