package noderpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/noderpc"
)

// Mainnet genesis block header, hex, and its hash. Source: Bitcoin Core
// chainparams.cpp (also btcd chaincfg.MainNetParams.GenesisBlock).
const (
	genesisHeaderHex = "0100000000000000000000000000000000000000000000000000000000000000" +
		"000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa" +
		"4b1e5e4a29ab5f49ffff001d1dac2b7c"
	genesisHash = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
)

// coreTemplate is a getblocktemplate answer in Bitcoin Core's shape
// (regtest, one segwit transaction), trimmed to the fields we decode plus a
// few we ignore.
const coreTemplate = `{
  "capabilities": ["proposal"],
  "version": 536870912,
  "rules": ["csv", "!segwit", "taproot"],
  "vbavailable": {},
  "vbrequired": 0,
  "previousblockhash": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
  "transactions": [{
    "data": "02000000000101aa",
    "txid": "1111111111111111111111111111111111111111111111111111111111111111",
    "hash": "2222222222222222222222222222222222222222222222222222222222222222",
    "depends": [],
    "fee": 1410,
    "sigops": 1,
    "weight": 561
  }],
  "coinbaseaux": {},
  "coinbasevalue": 5000001410,
  "longpollid": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e22061",
  "target": "7fffff0000000000000000000000000000000000000000000000000000000000",
  "mintime": 1296688603,
  "mutable": ["time", "transactions", "prevblock"],
  "noncerange": "00000000ffffffff",
  "sigoplimit": 80000,
  "sizelimit": 4000000,
  "weightlimit": 4000000,
  "curtime": 1700000000,
  "bits": "207fffff",
  "height": 1,
  "default_witness_commitment": "6a24aa21a9ed0000000000000000000000000000000000000000000000000000000000000000"
}`

func TestGetBlockTemplate(t *testing.T) {
	tests := []struct {
		name       string
		req        noderpc.TemplateRequest
		answer     stubAnswer
		wantParams string
		check      func(t *testing.T, tpl *noderpc.Template)
		wantKind   errKind
	}{
		{
			name:       "default segwit rule, Core answer",
			req:        noderpc.TemplateRequest{},
			answer:     ok(coreTemplate),
			wantParams: `[{"mode":"template","rules":["segwit"]}]`,
			check: func(t *testing.T, tpl *noderpc.Template) {
				require.Equal(t, int32(536870912), tpl.Version)
				require.Equal(t, int64(1), tpl.Height)
				require.Equal(t, int64(5000001410), tpl.CoinbaseValue)
				require.Equal(t, "207fffff", tpl.Bits)
				require.Equal(t, []string{"csv", "!segwit", "taproot"}, tpl.Rules)
				require.Equal(t, []string{"time", "transactions", "prevblock"}, tpl.Mutable)
				require.Equal(t, int64(4000000), tpl.WeightLimit)
				require.Equal(t, int64(4000000), tpl.SizeLimit)
				require.Equal(t, int64(80000), tpl.SigOpLimit)
				require.Equal(t, int64(1296688603), tpl.MinTime)
				require.Equal(t, int64(1700000000), tpl.CurTime)
				require.Equal(t, "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e22061", tpl.LongPollID)
				require.Equal(t, "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206", tpl.PreviousBlockHash)
				require.Equal(t, "7fffff0000000000000000000000000000000000000000000000000000000000", tpl.Target)
				require.Contains(t, tpl.DefaultWitnessCommitment, "6a24aa21a9ed")
				require.Equal(t, []noderpc.TemplateTx{{
					Data:    "02000000000101aa",
					TxID:    "1111111111111111111111111111111111111111111111111111111111111111",
					Hash:    "2222222222222222222222222222222222222222222222222222222222222222",
					Fee:     1410,
					SigOps:  1,
					Weight:  561,
					Depends: []int64{},
				}}, tpl.Transactions)
			},
		},
		{
			name:       "long poll with capabilities",
			req:        noderpc.TemplateRequest{Rules: []string{"segwit", "taproot"}, LongPollID: "abc-1", Capabilities: []string{"coinbasevalue", "longpoll"}},
			answer:     ok(`{"height":7,"bits":"1d00ffff"}`),
			wantParams: `[{"mode":"template","rules":["segwit","taproot"],"capabilities":["coinbasevalue","longpoll"],"longpollid":"abc-1"}]`,
			check: func(t *testing.T, tpl *noderpc.Template) {
				require.Equal(t, int64(7), tpl.Height)
			},
		},
		{
			name:       "btcd short bits are padded",
			answer:     ok(`{"height":2,"bits":"ffff"}`),
			wantParams: `[{"mode":"template","rules":["segwit"]}]`,
			check: func(t *testing.T, tpl *noderpc.Template) {
				require.Equal(t, "0000ffff", tpl.Bits)
			},
		},
		{
			name:       "segwit rule missing (Core)",
			answer:     rpcErr(500, -8, "getblocktemplate must be called with the segwit rule set (call with {\"rules\": [\"segwit\"]})"),
			wantParams: `[{"mode":"template","rules":["segwit"]}]`,
			wantKind:   kindRPC,
		},
		{
			name:       "initial download",
			answer:     rpcErr(500, -10, "Bitcoin Core is in initial sync and waiting for blocks..."),
			wantParams: `[{"mode":"template","rules":["segwit"]}]`,
			wantKind:   kindRPC,
		},
		{
			name:       "null result",
			answer:     ok(`null`),
			wantParams: `[{"mode":"template","rules":["segwit"]}]`,
			wantKind:   kindTransport,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, c := newStubNode(t, always(tc.answer))
			tpl, err := c.GetBlockTemplate(context.Background(), tc.req)
			req := stub.lastRequest(t)
			require.Equal(t, "getblocktemplate", req.Method)
			require.JSONEq(t, tc.wantParams, string(req.Params))
			require.Equal(t, tc.wantKind, classify(err), "%v", err)
			if tc.check != nil {
				require.NotNil(t, tpl)
				tc.check(t, tpl)
			}
		})
	}
}

func TestGetBestBlockHash(t *testing.T) {
	tests := []struct {
		name   string
		answer stubAnswer
		want   string
		kind   errKind
	}{
		{name: "ok", answer: ok(`"` + genesisHash + `"`), want: genesisHash},
		{name: "short hash rejected", answer: ok(`"abcd"`), kind: kindTransport},
		{name: "not hex", answer: ok(`"` + "zz" + genesisHash[2:] + `"`), kind: kindTransport},
		{name: "number", answer: ok(`5`), kind: kindTransport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, c := newStubNode(t, always(tc.answer))
			h, err := c.GetBestBlockHash(context.Background())
			require.Equal(t, tc.kind, classify(err), "%v", err)
			require.Equal(t, "getbestblockhash", stub.lastRequest(t).Method)
			if tc.kind == kindNone {
				require.Equal(t, tc.want, h.String())
			}
		})
	}
}

func TestGetBlockCount(t *testing.T) {
	tests := []struct {
		name   string
		answer stubAnswer
		want   int64
		kind   errKind
	}{
		{name: "ok", answer: ok(`431`), want: 431},
		{name: "null", answer: ok(`null`), kind: kindTransport},
		{name: "float", answer: ok(`1.5`), kind: kindTransport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newStubNode(t, always(tc.answer))
			n, err := c.GetBlockCount(context.Background())
			require.Equal(t, tc.kind, classify(err), "%v", err)
			require.Equal(t, tc.want, n)
		})
	}
}

func TestGetBlockHeader(t *testing.T) {
	hash, err := chainhash.NewHashFromStr(genesisHash)
	require.NoError(t, err)
	tests := []struct {
		name   string
		answer stubAnswer
		want   *noderpc.BlockHeaderInfo
		kind   errKind
		code   int
	}{
		{
			name: "Core",
			answer: ok(`{"hash":"` + genesisHash + `","confirmations":900000,"height":0,"version":1,"versionHex":"00000001",
				"merkleroot":"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b","time":1231006505,
				"mediantime":1231006505,"nonce":2083236893,"bits":"1d00ffff","difficulty":1,
				"chainwork":"0000000000000000000000000000000000000000000000000000000100010001","nTx":1,
				"nextblockhash":"00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"}`),
			want: &noderpc.BlockHeaderInfo{
				Hash: genesisHash, Confirmations: 900000, Height: 0, Version: 1,
				MerkleRoot: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
				Time:       1231006505, Nonce: 2083236893, Bits: "1d00ffff",
				NextHash:   "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
				MedianTime: 1231006505,
			},
		},
		{
			name: "btcd unpadded bits, no mediantime",
			answer: ok(`{"hash":"` + genesisHash + `","confirmations":1,"height":5,"version":536870912,"versionHex":"20000000",
				"merkleroot":"aa","time":1700000000,"nonce":4294967295,"bits":"7fffff","difficulty":1,
				"previousblockhash":"bb"}`),
			want: &noderpc.BlockHeaderInfo{
				Hash: genesisHash, Confirmations: 1, Height: 5, Version: 536870912, MerkleRoot: "aa",
				Time: 1700000000, Nonce: 4294967295, Bits: "007fffff", PreviousBlockHash: "bb",
			},
		},
		{name: "unknown block", answer: rpcErr(200, -5, "Block not found"), kind: kindRPC, code: noderpc.CodeBlockNotFound},
		{name: "nonce overflow", answer: ok(`{"nonce":4294967296}`), kind: kindTransport},
		{name: "null", answer: ok(`null`), kind: kindTransport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, c := newStubNode(t, always(tc.answer))
			info, err := c.GetBlockHeader(context.Background(), *hash)
			req := stub.lastRequest(t)
			require.Equal(t, "getblockheader", req.Method)
			require.JSONEq(t, `["`+genesisHash+`",true]`, string(req.Params))
			require.Equal(t, tc.kind, classify(err), "%v", err)
			if tc.kind == kindRPC {
				require.True(t, noderpc.IsRPCCode(err, tc.code))
			}
			require.Equal(t, tc.want, info)
		})
	}
}

func TestGetRawBlockHeader(t *testing.T) {
	hash := chaincfg.MainNetParams.GenesisHash
	tests := []struct {
		name   string
		answer stubAnswer
		kind   errKind
	}{
		{name: "genesis header", answer: ok(`"` + genesisHeaderHex + `"`)},
		{name: "odd hex", answer: ok(`"` + genesisHeaderHex[:159] + `"`), kind: kindTransport},
		{name: "short header", answer: ok(`"` + genesisHeaderHex[:158] + `"`), kind: kindTransport},
		{name: "long header", answer: ok(`"` + genesisHeaderHex + `00"`), kind: kindTransport},
		{name: "not hex", answer: ok(`"` + "xx" + genesisHeaderHex[2:] + `"`), kind: kindTransport},
		{name: "object", answer: ok(`{"hash":"x"}`), kind: kindTransport},
		{name: "unknown block", answer: rpcErr(200, -5, "Block not found"), kind: kindRPC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, c := newStubNode(t, always(tc.answer))
			hdr, err := c.GetRawBlockHeader(context.Background(), *hash)
			require.JSONEq(t, `["`+genesisHash+`",false]`, string(stub.lastRequest(t).Params))
			require.Equal(t, tc.kind, classify(err), "%v", err)
			if tc.kind != kindNone {
				require.Nil(t, hdr)
				return
			}
			require.Equal(t, genesisHash, hdr.BlockHash().String())
			require.Equal(t, int32(1), hdr.Version)
			require.Equal(t, uint32(0x1d00ffff), hdr.Bits)
			require.Equal(t, uint32(2083236893), hdr.Nonce)
			require.Equal(t, time.Unix(1231006505, 0).UTC(), hdr.Timestamp.UTC())
		})
	}
}

func TestSubmitBlock(t *testing.T) {
	tests := []struct {
		name       string
		answer     stubAnswer
		wantReject string
		kind       errKind
	}{
		{name: "accepted (null)", answer: ok(`null`)},
		{name: "duplicate", answer: ok(`"duplicate"`), wantReject: "duplicate"},
		{name: "inconclusive", answer: ok(`"inconclusive"`), wantReject: "inconclusive"},
		{name: "high-hash", answer: ok(`"high-hash"`), wantReject: "high-hash"},
		{name: "btcd rejection", answer: ok(`"rejected: already have block 0f91"`), wantReject: "rejected: already have block 0f91"},
		{name: "decode failure (Core, HTTP 500)", answer: rpcErr(500, -22, "Block decode failed"), kind: kindRPC},
		{name: "unexpected result type", answer: ok(`true`), kind: kindTransport},
		{name: "node down", answer: stubAnswer{Status: 502, Body: "bad gateway"}, kind: kindTransport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, c := newStubNode(t, always(tc.answer))
			reject, err := c.SubmitBlock(context.Background(), "00ab")
			require.JSONEq(t, `["00ab"]`, string(stub.lastRequest(t).Params))
			require.Equal(t, "submitblock", stub.lastRequest(t).Method)
			require.Equal(t, tc.kind, classify(err), "%v", err)
			require.Equal(t, tc.wantReject, reject)
		})
	}
}

func TestSimpleMethods(t *testing.T) {
	hash := *chaincfg.RegressionNetParams.GenesisHash
	tests := []struct {
		name       string
		answer     string // JSON result
		call       func(c *noderpc.Client) (any, error)
		wantMethod string
		wantParams string
		want       any
	}{
		{
			name:   "getblockchaininfo btcd",
			answer: `{"chain":"regtest","blocks":3,"headers":3,"bestblockhash":"ab","difficulty":1,"mediantime":1,"pruned":false}`,
			call: func(c *noderpc.Client) (any, error) {
				return c.GetBlockChainInfo(context.Background())
			},
			wantMethod: "getblockchaininfo", wantParams: `[]`,
			want: &noderpc.ChainInfo{Chain: "regtest", Blocks: 3, Headers: 3, BestBlockHash: "ab"},
		},
		{
			name:   "getblockchaininfo Core in IBD",
			answer: `{"chain":"main","blocks":10,"headers":900000,"bestblockhash":"cd","initialblockdownload":true}`,
			call: func(c *noderpc.Client) (any, error) {
				return c.GetBlockChainInfo(context.Background())
			},
			wantMethod: "getblockchaininfo", wantParams: `[]`,
			want: &noderpc.ChainInfo{Chain: "main", Blocks: 10, Headers: 900000, BestBlockHash: "cd", InitialBlockDownload: true},
		},
		{
			name:   "getblock verbosity 0",
			answer: `"0100beef"`,
			call: func(c *noderpc.Client) (any, error) {
				return c.GetBlockHex(context.Background(), hash)
			},
			wantMethod: "getblock", wantParams: `["` + hash.String() + `",0]`,
			want: "0100beef",
		},
		{
			name:   "sendrawtransaction",
			answer: `"` + genesisHash + `"`,
			call: func(c *noderpc.Client) (any, error) {
				return c.SendRawTransaction(context.Background(), "0200")
			},
			wantMethod: "sendrawtransaction", wantParams: `["0200"]`,
			want: genesisHash,
		},
		{
			name:   "getrawmempool",
			answer: `["aa","bb"]`,
			call: func(c *noderpc.Client) (any, error) {
				return c.GetRawMempool(context.Background())
			},
			wantMethod: "getrawmempool", wantParams: `[false]`,
			want: []string{"aa", "bb"},
		},
		{
			name:   "getrawmempool empty",
			answer: `[]`,
			call: func(c *noderpc.Client) (any, error) {
				return c.GetRawMempool(context.Background())
			},
			wantMethod: "getrawmempool", wantParams: `[false]`,
			want: []string{},
		},
		{
			name:   "generate",
			answer: `["aa","bb"]`,
			call: func(c *noderpc.Client) (any, error) {
				return c.Generate(context.Background(), 2)
			},
			wantMethod: "generate", wantParams: `[2]`,
			want: []string{"aa", "bb"},
		},
		{
			name:   "generatetoaddress",
			answer: `["aa"]`,
			call: func(c *noderpc.Client) (any, error) {
				return c.GenerateToAddress(context.Background(), 1, "bcrt1qxyz")
			},
			wantMethod: "generatetoaddress", wantParams: `[1,"bcrt1qxyz"]`,
			want: []string{"aa"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, c := newStubNode(t, always(ok(tc.answer)))
			got, err := tc.call(c)
			require.NoError(t, err)
			req := stub.lastRequest(t)
			require.Equal(t, tc.wantMethod, req.Method)
			require.JSONEq(t, tc.wantParams, string(req.Params))
			require.Equal(t, tc.want, got)
		})
	}
}
