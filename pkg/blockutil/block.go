package blockutil

import (
	"bytes"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// TemplateTx is one non-coinbase transaction of a template, decoded once.
type TemplateTx struct {
	// Raw is the transaction as the node serialised it (with witness data
	// when it has any).
	Raw []byte
	// TxID and WTxID are computed by us, not trusted from the node.
	TxID, WTxID chainhash.Hash
	// HasWitness reports whether the transaction carries witness data.
	HasWitness bool
}

// DecodeTemplateTx decodes a raw transaction and computes its ids.
func DecodeTemplateTx(raw []byte) (TemplateTx, error) {
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		return TemplateTx{}, fmt.Errorf("blockutil: decode transaction: %w", err)
	}
	if tx.SerializeSize() != len(raw) {
		return TemplateTx{}, fmt.Errorf("blockutil: transaction has %d trailing bytes", len(raw)-tx.SerializeSize())
	}
	if len(tx.TxIn) == 1 && tx.TxIn[0].PreviousOutPoint.Index == wire.MaxPrevOutIndex &&
		tx.TxIn[0].PreviousOutPoint.Hash == (chainhash.Hash{}) {
		return TemplateTx{}, fmt.Errorf("blockutil: template transaction %s is a coinbase", tx.TxHash())
	}
	return TemplateTx{
		Raw:        raw,
		TxID:       tx.TxHash(),
		WTxID:      tx.WitnessHash(),
		HasWitness: tx.HasWitness(),
	}, nil
}

// AssembleBlock serialises a full block: header, transaction count, the
// coinbase (with its witness when it has one) and the template transactions
// as the node gave them.
func AssembleBlock(header *Header, coinbase *wire.MsgTx, txs [][]byte) ([]byte, error) {
	size := HeaderLen + 9 + coinbase.SerializeSize()
	for _, t := range txs {
		size += len(t)
	}
	var buf bytes.Buffer
	buf.Grow(size)
	buf.Write(header[:])
	if err := wire.WriteVarInt(&buf, 0, uint64(len(txs)+1)); err != nil {
		return nil, err
	}
	if err := coinbase.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("blockutil: serialise coinbase: %w", err)
	}
	for _, t := range txs {
		buf.Write(t)
	}
	return buf.Bytes(), nil
}
