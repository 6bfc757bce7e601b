package blockutil

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// AddressKind names the standard output types a payout may use.
type AddressKind string

// Supported payout address kinds.
const (
	KindP2PKH  AddressKind = "p2pkh"
	KindP2SH   AddressKind = "p2sh"
	KindP2WPKH AddressKind = "p2wpkh"
	KindP2WSH  AddressKind = "p2wsh"
	KindP2TR   AddressKind = "p2tr"
)

// Address is a decoded, network-checked payout address.
type Address struct {
	// String is the address as the operator wrote it.
	String string
	// Kind is the output type.
	Kind AddressKind
	// Script is the output script paying to the address.
	Script []byte
}

// DecodeAddress decodes a payout address with its checksum (base58check for
// P2PKH/P2SH, bech32 for segwit v0 and bech32m for taproot) and checks that it
// belongs to params' network. Witness versions other than 0 (20 or 32 bytes)
// and 1 (32 bytes) are refused, as are raw public keys.
func DecodeAddress(s string, params *chaincfg.Params) (Address, error) {
	a, err := btcutil.DecodeAddress(s, params)
	if err != nil {
		return Address{}, fmt.Errorf("decode address %q: %w", s, err)
	}
	if !a.IsForNet(params) {
		return Address{}, fmt.Errorf("decode address %q: not a %s address", s, params.Name)
	}
	var kind AddressKind
	switch a.(type) {
	case *btcutil.AddressPubKeyHash:
		kind = KindP2PKH
	case *btcutil.AddressScriptHash:
		kind = KindP2SH
	case *btcutil.AddressWitnessPubKeyHash:
		kind = KindP2WPKH
	case *btcutil.AddressWitnessScriptHash:
		kind = KindP2WSH
	case *btcutil.AddressTaproot:
		kind = KindP2TR
	default:
		return Address{}, fmt.Errorf("decode address %q: unsupported address type %T", s, a)
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return Address{}, fmt.Errorf("decode address %q: %w", s, err)
	}
	return Address{String: s, Kind: kind, Script: script}, nil
}
