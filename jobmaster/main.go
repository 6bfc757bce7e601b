package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/hashgate/hashgate/pkg/version"
)

func main() {
	cfgPath := flag.String("c", "conf/jobmaster.json", "config file")
	check := flag.Bool("t", false, "check the config file, print every problem and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("jobmaster", version.String())
		return
	}
	if err := run(*cfgPath, *check); err != nil {
		fmt.Fprintln(os.Stderr, "jobmaster:", err)
		os.Exit(1)
	}
}
