package bus

import (
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Job is one unit of Stratum work published by the jobmaster. It carries
// everything a gateway needs to send mining.notify, validate shares, and,
// as a last resort, assemble and submit a found block itself.
type Job struct {
	// ID is unique across jobmaster restarts (hex string, used verbatim as
	// the Stratum job id).
	ID string
	// Height is the height of the block this job mines.
	Height int64
	// PrevHash is the previous block hash (internal byte order).
	PrevHash chainhash.Hash
	// Version is the block version before any version rolling.
	Version int32
	// Bits is the compact network target.
	Bits uint32
	// CurTime is the suggested ntime; MinTime the earliest allowed ntime.
	CurTime, MinTime uint32
	// Coinb1 and Coinb2 surround extranonce1 || extranonce2.
	Coinb1, Coinb2 []byte
	// Extranonce1Size and Extranonce2Size are the sizes the coinbase was
	// built for; gateways may split extranonce2 further.
	Extranonce1Size, Extranonce2Size uint8
	// MerkleBranch is the Stratum branch (internal byte order).
	MerkleBranch []chainhash.Hash
	// CoinbaseValue is subsidy plus fees in satoshis.
	CoinbaseValue int64
	// Clean tells miners to drop older work (a new previous block).
	Clean bool
	// Empty marks a job with no transactions, issued on a new tip before
	// the full template arrived.
	Empty bool
	// HasWitness marks a coinbase that carries a witness commitment; block
	// assembly must then add the witness reserved value.
	HasWitness bool
	// CreatedUnixNano is when the jobmaster built the job.
	CreatedUnixNano int64
	// Source names the node the template came from.
	Source string
	// Txs are the template's raw transactions in block order.
	Txs [][]byte
}

const (
	flagClean = 1 << iota
	flagEmpty
	flagWitness
)

// Marshal encodes the job.
func (j *Job) Marshal() []byte {
	size := 128 + len(j.Coinb1) + len(j.Coinb2) + 32*len(j.MerkleBranch)
	for _, t := range j.Txs {
		size += len(t) + 5
	}
	e := newEncoder(TypeJob, size)
	e.str(j.ID)
	e.i64(j.Height)
	e.hash((*[32]byte)(&j.PrevHash))
	e.u32(uint32(j.Version))
	e.u32(j.Bits)
	e.u32(j.CurTime)
	e.u32(j.MinTime)
	e.bytes(j.Coinb1)
	e.bytes(j.Coinb2)
	e.u8(j.Extranonce1Size)
	e.u8(j.Extranonce2Size)
	e.uvarint(uint64(len(j.MerkleBranch)))
	for i := range j.MerkleBranch {
		e.hash((*[32]byte)(&j.MerkleBranch[i]))
	}
	e.i64(j.CoinbaseValue)
	var flags uint8
	if j.Clean {
		flags |= flagClean
	}
	if j.Empty {
		flags |= flagEmpty
	}
	if j.HasWitness {
		flags |= flagWitness
	}
	e.u8(flags)
	e.i64(j.CreatedUnixNano)
	e.str(j.Source)
	e.uvarint(uint64(len(j.Txs)))
	for _, t := range j.Txs {
		e.bytes(t)
	}
	return e.b
}

// Unmarshal decodes a job, replacing every field of j.
func (j *Job) Unmarshal(b []byte) error {
	d := newDecoder(b, TypeJob)
	var out Job
	out.ID = d.Str(0, maxString, "job id")
	out.Height = d.I64()
	out.PrevHash = d.Hash()
	out.Version = int32(d.U32())
	out.Bits = d.U32()
	out.CurTime = d.U32()
	out.MinTime = d.U32()
	out.Coinb1 = d.Bytes(0, maxBlob, "coinb1")
	out.Coinb2 = d.Bytes(0, maxBlob, "coinb2")
	out.Extranonce1Size = d.U8()
	out.Extranonce2Size = d.U8()
	if n := d.Length(maxBranch, 0, "merkle branch"); n > 0 {
		out.MerkleBranch = make([]chainhash.Hash, n)
		for i := range out.MerkleBranch {
			out.MerkleBranch[i] = d.Hash()
		}
	}
	out.CoinbaseValue = d.I64()
	flags := d.U8()
	out.Clean = flags&flagClean != 0
	out.Empty = flags&flagEmpty != 0
	out.HasWitness = flags&flagWitness != 0
	out.CreatedUnixNano = d.I64()
	out.Source = d.Str(0, maxString, "source")
	if n := d.Length(maxTxs, 0, "transactions"); n > 0 {
		// Each transaction needs at least one length byte: bound the
		// allocation by the bytes actually present.
		if n > len(b) {
			d.Fail(ErrShort)
		} else {
			out.Txs = make([][]byte, n)
			for i := range out.Txs {
				out.Txs[i] = d.Bytes(0, maxBlob, "transaction")
			}
		}
	}
	if err := d.Finish(); err != nil {
		return err
	}
	*j = out
	return nil
}

// FoundBlock is a share that met the network target, as share data: the
// jobmaster rebuilds the block from its own copy of the job.
type FoundBlock struct {
	// JobID names the job the share was mined on.
	JobID string
	// Extranonce1 and Extranonce2 are the coinbase extranonces.
	Extranonce1, Extranonce2 []byte
	// NTime and Nonce are the header fields the miner chose.
	NTime, Nonce uint32
	// Version is the final header version after version rolling.
	Version int32
	// BlockHash is the hash the sender computed (used for logs and
	// de-duplication; the jobmaster recomputes it).
	BlockHash chainhash.Hash
	// Source identifies the sender (gateway id).
	Source string
	// User and Worker credit the block.
	User, Worker string
	// FoundUnixNano is when the share was validated.
	FoundUnixNano int64
}

// Marshal encodes the found block.
func (f *FoundBlock) Marshal() []byte {
	e := newEncoder(TypeFoundBlock, 128+len(f.JobID)+len(f.User)+len(f.Worker)+len(f.Source))
	e.str(f.JobID)
	e.bytes(f.Extranonce1)
	e.bytes(f.Extranonce2)
	e.u32(f.NTime)
	e.u32(f.Nonce)
	e.u32(uint32(f.Version))
	e.hash((*[32]byte)(&f.BlockHash))
	e.str(f.Source)
	e.str(f.User)
	e.str(f.Worker)
	e.i64(f.FoundUnixNano)
	return e.b
}

// Unmarshal decodes a found block, replacing every field of f.
func (f *FoundBlock) Unmarshal(b []byte) error {
	d := newDecoder(b, TypeFoundBlock)
	var out FoundBlock
	out.JobID = d.Str(0, maxString, "job id")
	out.Extranonce1 = d.Bytes(0, 64, "extranonce1")
	out.Extranonce2 = d.Bytes(0, 64, "extranonce2")
	out.NTime = d.U32()
	out.Nonce = d.U32()
	out.Version = int32(d.U32())
	out.BlockHash = d.Hash()
	out.Source = d.Str(0, maxString, "source")
	out.User = d.Str(0, maxString, "user")
	out.Worker = d.Str(0, maxString, "worker")
	out.FoundUnixNano = d.I64()
	if err := d.Finish(); err != nil {
		return err
	}
	*f = out
	return nil
}

// BlockStatus is the outcome of a found block.
type BlockStatus string

// Block outcomes.
const (
	// BlockAccepted: a node holds the block in its best chain.
	BlockAccepted BlockStatus = "accepted"
	// BlockSideChain: a node holds the block, but another block won.
	BlockSideChain BlockStatus = "sidechain"
	// BlockSubmitted: submitted, acceptance not confirmed (yet).
	BlockSubmitted BlockStatus = "submitted"
	// BlockRejected: every node refused the block.
	BlockRejected BlockStatus = "rejected"
	// BlockInvalid: the share failed the jobmaster's own checks (not
	// enough work, bad version bits, malformed extranonces); never sent.
	BlockInvalid BlockStatus = "invalid"
	// BlockUnknownJob: the job is unknown or past its grace period.
	BlockUnknownJob BlockStatus = "unknown_job"
	// BlockUnreachable: no node could be reached; the sender should keep
	// the block and submit it itself.
	BlockUnreachable BlockStatus = "unreachable"
)

// BlockResult answers a FoundBlock request and is published on
// block.result.
type BlockResult struct {
	// Status is the outcome; Reason adds detail (node reject reason,
	// which check failed).
	Status BlockStatus
	Reason string
	// BlockHash is the hash of the rebuilt block (zero if it could not be
	// rebuilt).
	BlockHash chainhash.Hash
	// JobID and Height identify the job.
	JobID  string
	Height int64
	// User and Worker repeat who found it.
	User, Worker string
	// Block is the raw block when it was built (empty otherwise); senders
	// may relay it.
	Block []byte
}

// Marshal encodes the result.
func (r *BlockResult) Marshal() []byte {
	e := newEncoder(TypeBlockResult, 128+len(r.Reason)+len(r.Block))
	e.str(string(r.Status))
	e.str(r.Reason)
	e.hash((*[32]byte)(&r.BlockHash))
	e.str(r.JobID)
	e.i64(r.Height)
	e.str(r.User)
	e.str(r.Worker)
	e.bytes(r.Block)
	return e.b
}

// Unmarshal decodes a result, replacing every field of r.
func (r *BlockResult) Unmarshal(b []byte) error {
	d := newDecoder(b, TypeBlockResult)
	var out BlockResult
	out.Status = BlockStatus(d.Str(0, maxString, "status"))
	out.Reason = d.Str(0, 4096, "reason")
	out.BlockHash = d.Hash()
	out.JobID = d.Str(0, maxString, "job id")
	out.Height = d.I64()
	out.User = d.Str(0, maxString, "user")
	out.Worker = d.Str(0, maxString, "worker")
	out.Block = d.Bytes(0, 16<<20, "block")
	if err := d.Finish(); err != nil {
		return err
	}
	*r = out
	return nil
}

// Tip announces a new block header seen elsewhere (bitpeer, another pool).
// Receivers must check its proof of work before acting on it.
type Tip struct {
	// Header is the 80-byte block header.
	Header [80]byte
	// Height is the header's height if the sender knows it, else 0.
	Height int64
	// Source identifies the sender.
	Source string
	// SeenUnixNano is when the sender saw the header.
	SeenUnixNano int64
}

// Marshal encodes the tip.
func (t *Tip) Marshal() []byte {
	e := newEncoder(TypeTip, 128+len(t.Source))
	e.b = append(e.b, t.Header[:]...)
	e.i64(t.Height)
	e.str(t.Source)
	e.i64(t.SeenUnixNano)
	return e.b
}

// Unmarshal decodes a tip, replacing every field of t.
func (t *Tip) Unmarshal(b []byte) error {
	d := newDecoder(b, TypeTip)
	var out Tip
	copy(out.Header[:], d.Take(80))
	out.Height = d.I64()
	out.Source = d.Str(0, maxString, "source")
	out.SeenUnixNano = d.I64()
	if err := d.Finish(); err != nil {
		return err
	}
	*t = out
	return nil
}
