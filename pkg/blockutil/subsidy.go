package blockutil

import (
	"github.com/btcsuite/btcd/chaincfg"
)

// baseSubsidy is the block subsidy of the first halving era in satoshis.
const baseSubsidy = 50 * 100_000_000

// Subsidy returns the block subsidy in satoshis for a block at height on the
// given network. The subsidy halves at every exact multiple of the network's
// reduction interval (210000 on mainnet, 150 on regtest): the block at height
// 210000 already earns 25 BTC. After 64 halvings it is zero.
func Subsidy(height int64, params *chaincfg.Params) int64 {
	if height < 0 {
		return 0
	}
	interval := int64(params.SubsidyReductionInterval)
	if interval <= 0 {
		return baseSubsidy
	}
	halvings := height / interval
	if halvings >= 64 {
		return 0
	}
	return baseSubsidy >> uint(halvings)
}
