package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/hashgate/hashgate/tools/internal/cli"
)

func main() {
	if err := cli.Run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			return
		case errors.Is(err, cli.ErrUsage):
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "hgminer:", err)
		os.Exit(1)
	}
}
