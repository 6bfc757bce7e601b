package blockutil

import (
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
)

// NetParams returns the chain parameters for a network name as operators write
// it in configs: "mainnet" (or "main"), "testnet3" (or "testnet"), "signet" or
// "regtest".
func NetParams(name string) (*chaincfg.Params, error) {
	switch strings.ToLower(name) {
	case "mainnet", "main", "bitcoin":
		return &chaincfg.MainNetParams, nil
	case "testnet3", "testnet", "test":
		return &chaincfg.TestNet3Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest", "regression":
		return &chaincfg.RegressionNetParams, nil
	}
	return nil, fmt.Errorf("blockutil: unknown network %q (want mainnet, testnet3, signet or regtest)", name)
}
