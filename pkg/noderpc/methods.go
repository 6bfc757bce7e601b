package noderpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// TemplateRequest holds the getblocktemplate request options the pool uses.
// The mode is always "template".
type TemplateRequest struct {
	// Rules lists the soft-fork rules the caller supports. Empty means
	// ["segwit"], which Bitcoin Core requires.
	Rules []string
	// LongPollID, when set, makes the call a BIP 22 long poll: the node
	// answers only when the template identified by it is stale. Pass a
	// context with a long deadline.
	LongPollID string
	// Capabilities lists BIP 22 capabilities such as "coinbasetxn",
	// "longpoll" or "proposal"; may be empty.
	Capabilities []string
}

// templateParams is the wire form of TemplateRequest.
type templateParams struct {
	Mode         string   `json:"mode"`
	Rules        []string `json:"rules"`
	Capabilities []string `json:"capabilities,omitempty"`
	LongPollID   string   `json:"longpollid,omitempty"`
}

// Template is a getblocktemplate answer (BIP 22/23/145). Field names follow
// Bitcoin Core; btcd leaves Rules empty.
type Template struct {
	Version                  int32        `json:"version"`
	PreviousBlockHash        string       `json:"previousblockhash"`
	Transactions             []TemplateTx `json:"transactions"`
	CoinbaseValue            int64        `json:"coinbasevalue"`
	LongPollID               string       `json:"longpollid"`
	Target                   string       `json:"target"`
	MinTime                  int64        `json:"mintime"`
	CurTime                  int64        `json:"curtime"`
	Bits                     string       `json:"bits"` // eight hex digits
	Height                   int64        `json:"height"`
	DefaultWitnessCommitment string       `json:"default_witness_commitment"`
	Rules                    []string     `json:"rules"`
	Mutable                  []string     `json:"mutable"`
	SigOpLimit               int64        `json:"sigoplimit"`
	SizeLimit                int64        `json:"sizelimit"`
	WeightLimit              int64        `json:"weightlimit"`
}

// TemplateTx is one non-coinbase transaction of a Template.
type TemplateTx struct {
	Data    string  `json:"data"`    // serialized transaction, hex, with witness
	TxID    string  `json:"txid"`    // hash without witness
	Hash    string  `json:"hash"`    // hash with witness (wtxid)
	Fee     int64   `json:"fee"`     // satoshis
	SigOps  int64   `json:"sigops"`  // sigop cost
	Weight  int64   `json:"weight"`  // BIP 141 weight
	Depends []int64 `json:"depends"` // 1-based indexes into Transactions
}

// GetBlockTemplate calls getblocktemplate in template mode.
func (c *Client) GetBlockTemplate(ctx context.Context, req TemplateRequest) (*Template, error) {
	const method = "getblocktemplate"
	p := templateParams{
		Mode:         "template",
		Rules:        req.Rules,
		Capabilities: req.Capabilities,
		LongPollID:   req.LongPollID,
	}
	if len(p.Rules) == 0 {
		p.Rules = []string{"segwit"}
	}
	var tpl *Template
	if err := c.Call(ctx, method, []any{p}, &tpl); err != nil {
		return nil, err
	}
	if tpl == nil {
		return nil, nullResult(method)
	}
	tpl.Bits = padBits(tpl.Bits)
	return tpl, nil
}

// GetBestBlockHash returns the hash of the chain tip.
func (c *Client) GetBestBlockHash(ctx context.Context) (chainhash.Hash, error) {
	const method = "getbestblockhash"
	var s string
	if err := c.Call(ctx, method, nil, &s); err != nil {
		return chainhash.Hash{}, err
	}
	h, err := parseHash(s)
	if err != nil {
		return chainhash.Hash{}, &TransportError{Op: method, Err: err}
	}
	return h, nil
}

// GetBlockCount returns the height of the chain tip.
func (c *Client) GetBlockCount(ctx context.Context) (int64, error) {
	const method = "getblockcount"
	var n *int64
	if err := c.Call(ctx, method, nil, &n); err != nil {
		return 0, err
	}
	if n == nil {
		return 0, nullResult(method)
	}
	return *n, nil
}

// BlockHeaderInfo is the verbose getblockheader answer.
type BlockHeaderInfo struct {
	Hash              string `json:"hash"`
	Confirmations     int64  `json:"confirmations"` // -1 when not on the best chain (Core)
	Height            int64  `json:"height"`
	Version           int32  `json:"version"`
	MerkleRoot        string `json:"merkleroot"`
	Time              int64  `json:"time"`
	Nonce             uint32 `json:"nonce"`
	Bits              string `json:"bits"` // eight hex digits
	PreviousBlockHash string `json:"previousblockhash"`
	NextHash          string `json:"nextblockhash"`
	MedianTime        int64  `json:"mediantime"` // Bitcoin Core only; 0 on btcd
}

// GetBlockHeader returns the decoded header of the block with the given
// hash. An unknown hash gives an *RPCError with CodeBlockNotFound on both
// Bitcoin Core and btcd.
func (c *Client) GetBlockHeader(ctx context.Context, hash chainhash.Hash) (*BlockHeaderInfo, error) {
	const method = "getblockheader"
	var info *BlockHeaderInfo
	if err := c.Call(ctx, method, []any{hash.String(), true}, &info); err != nil {
		return nil, err
	}
	if info == nil {
		return nil, nullResult(method)
	}
	info.Bits = padBits(info.Bits)
	return info, nil
}

// GetRawBlockHeader returns the 80-byte header of the block with the given
// hash, decoded from getblockheader's non-verbose hex answer.
func (c *Client) GetRawBlockHeader(ctx context.Context, hash chainhash.Hash) (*wire.BlockHeader, error) {
	const method = "getblockheader"
	var s string
	if err := c.Call(ctx, method, []any{hash.String(), false}, &s); err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, &TransportError{Op: method, Err: fmt.Errorf("decode header hex: %w", err)}
	}
	if len(raw) != wire.MaxBlockHeaderPayload {
		return nil, &TransportError{Op: method, Err: fmt.Errorf("header is %d bytes, want %d", len(raw), wire.MaxBlockHeaderPayload)}
	}
	var hdr wire.BlockHeader
	if err := hdr.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, &TransportError{Op: method, Err: fmt.Errorf("decode header: %w", err)}
	}
	return &hdr, nil
}

// SubmitBlock submits a serialized block (hex). A nil error and an empty
// reject string mean the node accepted the block. A non-empty reject string
// is the node's BIP 22 verdict: Bitcoin Core answers e.g. "duplicate",
// "inconclusive", "high-hash" or "bad-txnmrklroot"; btcd answers
// "rejected: <reason>". An undecodable block is an *RPCError
// (CodeDeserialization) on both nodes. btcd also answers null for an orphan
// block (unknown parent), so callers that must know the block connected
// should confirm with GetBlockHeader or GetBestBlockHash.
func (c *Client) SubmitBlock(ctx context.Context, blockHex string) (reject string, err error) {
	const method = "submitblock"
	var s *string
	if err := c.Call(ctx, method, []any{blockHex}, &s); err != nil {
		return "", err
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// ChainInfo is the subset of getblockchaininfo the pool uses.
type ChainInfo struct {
	Chain                string `json:"chain"` // "main", "test", "regtest", ...
	Blocks               int64  `json:"blocks"`
	Headers              int64  `json:"headers"`
	BestBlockHash        string `json:"bestblockhash"`
	InitialBlockDownload bool   `json:"initialblockdownload"` // btcd omits it when false
}

// GetBlockChainInfo returns the node's chain state.
func (c *Client) GetBlockChainInfo(ctx context.Context) (*ChainInfo, error) {
	const method = "getblockchaininfo"
	var info *ChainInfo
	if err := c.Call(ctx, method, nil, &info); err != nil {
		return nil, err
	}
	if info == nil {
		return nil, nullResult(method)
	}
	return info, nil
}

// GetBlockHex returns the serialized block (hex, with witness data) with the
// given hash, using getblock with verbosity 0. An unknown hash gives an
// *RPCError with CodeBlockNotFound.
func (c *Client) GetBlockHex(ctx context.Context, hash chainhash.Hash) (string, error) {
	const method = "getblock"
	var s *string
	if err := c.Call(ctx, method, []any{hash.String(), 0}, &s); err != nil {
		return "", err
	}
	if s == nil {
		return "", nullResult(method)
	}
	return *s, nil
}

// SendRawTransaction broadcasts a serialized transaction (hex) and returns
// its txid.
func (c *Client) SendRawTransaction(ctx context.Context, txHex string) (string, error) {
	const method = "sendrawtransaction"
	var s *string
	if err := c.Call(ctx, method, []any{txHex}, &s); err != nil {
		return "", err
	}
	if s == nil {
		return "", nullResult(method)
	}
	return *s, nil
}

// GetRawMempool returns the txids in the node's mempool, in no particular
// order.
func (c *Client) GetRawMempool(ctx context.Context) ([]string, error) {
	const method = "getrawmempool"
	var ids []string
	if err := c.Call(ctx, method, []any{false}, &ids); err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// Generate mines n blocks to the node's --miningaddr and returns their
// hashes. It is btcd's regtest/simnet "generate"; Bitcoin Core removed it.
func (c *Client) Generate(ctx context.Context, n int) ([]string, error) {
	const method = "generate"
	var hashes []string
	if err := c.Call(ctx, method, []any{n}, &hashes); err != nil {
		return nil, err
	}
	return hashes, nil
}

// GenerateToAddress mines n blocks paying to addr and returns their hashes.
// It is Bitcoin Core's regtest generator; btcd answers CodeMethodNotFound.
func (c *Client) GenerateToAddress(ctx context.Context, n int, addr string) ([]string, error) {
	const method = "generatetoaddress"
	var hashes []string
	if err := c.Call(ctx, method, []any{n, addr}, &hashes); err != nil {
		return nil, err
	}
	return hashes, nil
}

// nullResult reports a null where the method must return a value.
func nullResult(method string) error {
	return &TransportError{Op: method, Err: errors.New("unexpected null result")}
}

// parseHash decodes a display-order (byte-reversed) 64-digit hex hash.
// Unlike chainhash.NewHashFromStr it rejects short strings.
func parseHash(s string) (chainhash.Hash, error) {
	if len(s) != 2*chainhash.HashSize {
		return chainhash.Hash{}, fmt.Errorf("hash %s: want %d hex digits", clip([]byte(s)), 2*chainhash.HashSize)
	}
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("hash %s: %w", clip([]byte(s)), err)
	}
	return *h, nil
}

// padBits left-pads a compact target to eight hex digits; btcd prints it
// without leading zeros.
func padBits(bits string) string {
	if bits != "" && len(bits) < 8 {
		return strings.Repeat("0", 8-len(bits)) + bits
	}
	return bits
}
