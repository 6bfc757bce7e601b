package agentwire

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Share is one share a miner behind the agent submitted and the agent
// accepted by its local check.
type Share struct {
	// MinerID names the miner (see MinerLogin), which gives the user,
	// worker, extranonce1 suffix and version mask.
	MinerID uint32
	// JobID is the job the share was mined on.
	JobID string
	// Extranonce2 is the miner's extranonce2 (Welcome.Extranonce2Size
	// bytes, at most MaxExtranonce).
	Extranonce2 []byte
	// NTime, Nonce and VersionBits are the header fields the miner chose;
	// VersionBits are the rolled bits as in mining.submit's sixth
	// parameter (0: not rolled).
	NTime, Nonce, VersionBits uint32
	// Difficulty is the difficulty the agent credited the share with (the
	// miner's difficulty when it found the share; finite, > 0). The gateway
	// checks the share's hash against it, so an agent cannot claim more
	// work than the hash proves.
	Difficulty float64
}

// check validates one share; en2Size < 0 accepts any extranonce2 size.
func (s *Share) check(en2Size int) error {
	if s.MinerID == 0 {
		return fmt.Errorf("%w: miner id 0", ErrInvalid)
	}
	if err := checkLen(len(s.JobID), 1, MaxNameLen, "job id"); err != nil {
		return err
	}
	if err := checkLen(len(s.Extranonce2), 1, MaxExtranonce, "extranonce2"); err != nil {
		return err
	}
	if en2Size >= 0 && len(s.Extranonce2) != en2Size {
		return fmt.Errorf("%w: extranonce2 of %d bytes in a batch of %d-byte extranonce2s",
			ErrInvalid, len(s.Extranonce2), en2Size)
	}
	if !validDifficulty(s.Difficulty) {
		return fmt.Errorf("%w: difficulty %v", ErrInvalid, s.Difficulty)
	}
	return nil
}

// ShareBatch carries the shares an agent collected over at most about
// 100 ms. Batch ids increase strictly within a session; a batch keeps its id
// when it is replayed on a later session.
//
// For the smallest encoding, put shares of the same job next to each other
// and, within a job, in ascending miner id order (Sort does both); the
// gateway's BatchAck lists results in the order sent.
type ShareBatch struct {
	BatchID uint64
	// Time is when the agent closed the batch (unix seconds, the agent's
	// clock corrected by Welcome.ServerTime; 0: unknown, the gateway uses
	// its own). Statistics credit the batch's shares to that minute, so a
	// batch replayed later or to another gateway lands in the same minute
	// and is recognised as the same batch.
	Time   int64
	Shares []Share
	// Rejects counts the shares the agent refused since the previous
	// batch, per miner and reason, so per-worker reject statistics match a
	// direct connection's. At most MaxBatchRejects entries.
	Rejects []RejectCount
}

// RejectCount is how many shares of one miner the agent refused for one
// reason.
type RejectCount struct {
	MinerID uint32
	// Reason is the pool's reject reason code (pkg/stats.Reason, whose
	// names are the reject_<reason> statistics); a gateway that does not
	// know a code counts the shares as rejected without a reason.
	Reason uint8
	Count  uint32 // ≥ 1
}

// Type implements Message.
func (*ShareBatch) Type() Type { return TypeShareBatch }

// Sort orders the shares by job id, then miner id (stable), the order that
// encodes smallest.
func (b *ShareBatch) Sort() {
	slices.SortStableFunc(b.Shares, func(x, y Share) int {
		if c := cmp.Compare(x.JobID, y.JobID); c != 0 {
			return c
		}
		return cmp.Compare(x.MinerID, y.MinerID)
	})
}

func (b *ShareBatch) check() error {
	n := len(b.Shares)
	if n > MaxBatchShares {
		return fmt.Errorf("%w: %d shares, limit %d", ErrTooLong, n, MaxBatchShares)
	}
	if b.Time < 0 {
		return fmt.Errorf("%w: time %d", ErrInvalid, b.Time)
	}
	if len(b.Rejects) > MaxBatchRejects {
		return fmt.Errorf("%w: %d reject counts, limit %d", ErrTooLong, len(b.Rejects), MaxBatchRejects)
	}
	for i, r := range b.Rejects {
		if r.MinerID == 0 || r.Count == 0 {
			return fmt.Errorf("%w: reject count %d: miner id %d, count %d", ErrInvalid, i, r.MinerID, r.Count)
		}
	}
	if n == 0 {
		return nil
	}
	size, groups := len(b.Shares[0].Extranonce2), 0
	for i := range b.Shares {
		if err := b.Shares[i].check(size); err != nil {
			return fmt.Errorf("share %d: %w", i, err)
		}
		if i == 0 || b.Shares[i].JobID != b.Shares[i-1].JobID {
			groups++
		}
	}
	if groups > MaxBatchGroups {
		return fmt.Errorf("%w: %d job runs, limit %d", ErrTooLong, groups, MaxBatchGroups)
	}
	return nil
}

// AppendMarshal implements Message: the self-contained encoding, which
// refers to no connection state.
func (b *ShareBatch) AppendMarshal(dst []byte) ([]byte, error) {
	var s batchScratch
	return s.appendBatch(dst, b, nil)
}

// Marshal implements Message.
func (b *ShareBatch) Marshal() ([]byte, error) { return b.AppendMarshal(nil) }

// Unmarshal implements Message: it decodes the self-contained encoding and
// fails with ErrNoContext on a batch encoded relative to connection state.
func (b *ShareBatch) Unmarshal(body []byte) error {
	var s batchScratch
	return s.decodeBatch(b, body, nil)
}

// ---------------------------------------------------------------------------
// Compact encoding.
//
//	batch id    uvarint
//	en2 size    u8: the size of every extranonce2 in the batch (0 iff no shares)
//	groups      uvarint, then per run of shares with the same job:
//	              job id str | ntime base u32 | share count uvarint (≥ 1)
//	columns over all N shares, in order:
//	  flags     N bytes (below)
//	  miner id  N uvarint: the first share's id, then the difference to the
//	            previous share's id (negated when flagNegID is set)
//	  en2       N values: uvarint of the extranonce2 read as a little- or
//	            big-endian integer (flagEn2BE), or of its increase over the
//	            miner's previous extranonce2 (flagEn2Delta); raw bytes when
//	            en2 size > 8
//	  nonce     N u32
//	  version   one entry per share with version bits: u16 (bits >> 13, the
//	            bits lie within 0x1FFFE000) or u32
//	  ntime     one svarint per share with flagNTime: ntime - group base
//	  diff      one entry per share not reusing the miner's previous
//	            difficulty: i8 e (2^e), uvarint m + i8 e (m·10^e), or f64
//
// Flags: bits 0-1 difficulty (0: the miner's previous, 1: 2^e, 2: m·10^e,
// 3: f64); bit 2 an ntime difference follows; bits 3-4 version bits (0:
// none, 1: u16, 2: u32, 3: invalid); bit 5 extranonce2 is a step over the
// miner's previous one; bit 6 extranonce2 is big-endian; bit 7 the miner id
// difference is negative.
//
// "The miner's previous" share is its latest earlier share in this batch,
// else (connection encoding only) the latest one sent on this connection.
const (
	flagDiffMask  = 0x03
	diffSame      = 0 // the miner's previous difficulty
	diffPow2      = 1
	diffDecimal   = 2
	diffFloat     = 3
	flagNTime     = 0x04
	flagVBitsMask = 0x18
	vbitsNone     = 0 << 3
	vbitsShort    = 1 << 3
	vbitsLong     = 2 << 3
	flagEn2Delta  = 0x20
	flagEn2BE     = 0x40
	flagNegID     = 0x80

	vbitsShortMask = 0x1FFFE000 // BIP320 general-purpose bits
	minShareBytes  = 7          // flags, id, en2, nonce
)

// MaxMinerStates bounds the per-miner state one side of a connection
// keeps. Beyond it, new miners' shares are encoded in full.
const MaxMinerStates = 1 << 17

// minerState is what a connection remembers of a miner's latest share.
type minerState struct {
	diff   float64
	en2    [8]byte
	en2Len uint8 // 0: extranonce2 longer than 8 bytes, no delta
}

// shareContext is one direction's per-miner state. Encoder and decoder
// update it identically, share by share, so it stays in step.
type shareContext struct {
	miners map[uint32]minerState
}

func (c *shareContext) get(id uint32) (minerState, bool) {
	if c == nil {
		return minerState{}, false
	}
	st, ok := c.miners[id]
	return st, ok
}

// update records the shares of a batch, in order. A miner not yet known is
// only added while the table has room, on both sides alike.
func (c *shareContext) update(shares []Share) {
	if c == nil {
		return
	}
	if c.miners == nil {
		c.miners = make(map[uint32]minerState)
	}
	for i := range shares {
		s := &shares[i]
		if _, ok := c.miners[s.MinerID]; !ok && len(c.miners) >= MaxMinerStates {
			continue
		}
		st := minerState{diff: s.Difficulty}
		if len(s.Extranonce2) <= 8 {
			st.en2Len = uint8(copy(st.en2[:], s.Extranonce2))
		}
		c.miners[s.MinerID] = st
	}
}

func (c *shareContext) forget(id uint32) {
	if c != nil {
		delete(c.miners, id)
	}
}

// shareCode is the encoder's decision for one share.
type shareCode struct {
	flags uint8
	id    uint64
	en2   uint64
	mant  uint64
	exp   int8
}

// batchScratch holds reusable buffers for one direction.
type batchScratch struct {
	codes []shareCode
	prev  []int32          // index of the miner's previous share in the batch, or -1
	last  map[uint32]int32 // miner id → latest index, while walking a batch
}

// linkPrev fills s.prev for shares.
func (s *batchScratch) linkPrev(shares []Share) {
	s.prev = slices.Grow(s.prev[:0], len(shares))[:len(shares)]
	if s.last == nil {
		s.last = make(map[uint32]int32)
	}
	clear(s.last)
	for i := range shares {
		if j, ok := s.last[shares[i].MinerID]; ok {
			s.prev[i] = j
		} else {
			s.prev[i] = -1
		}
		s.last[shares[i].MinerID] = int32(i)
	}
}

// prevState is the state share i may refer to.
func (s *batchScratch) prevState(shares []Share, i int, ctx *shareContext) (minerState, bool) {
	if j := s.prev[i]; j >= 0 {
		p := &shares[j]
		st := minerState{diff: p.Difficulty}
		if len(p.Extranonce2) <= 8 {
			st.en2Len = uint8(copy(st.en2[:], p.Extranonce2))
		}
		return st, true
	}
	return ctx.get(shares[i].MinerID)
}

func (s *batchScratch) appendBatch(dst []byte, b *ShareBatch, ctx *shareContext) ([]byte, error) {
	if err := b.check(); err != nil {
		return dst, err
	}
	shares := b.Shares
	n := len(shares)
	en2Size := 0
	if n > 0 {
		en2Size = len(shares[0].Extranonce2)
	}
	e := encoder{b: dst}
	e.uvarint(b.BatchID)
	e.uvarint(uint64(b.Time))
	e.u8(uint8(en2Size))

	// Job runs.
	groups := 0
	for i := range shares {
		if i == 0 || shares[i].JobID != shares[i-1].JobID {
			groups++
		}
	}
	e.uvarint(uint64(groups))
	for i := 0; i < n; {
		j := i + 1
		for j < n && shares[j].JobID == shares[i].JobID {
			j++
		}
		e.str(shares[i].JobID)
		e.u32(shares[i].NTime)
		e.uvarint(uint64(j - i))
		i = j
	}

	// Decide every share's encoding.
	s.linkPrev(shares)
	s.codes = slices.Grow(s.codes[:0], n)[:n]
	var base uint32
	for i := range shares {
		sh, c := &shares[i], &s.codes[i]
		*c = shareCode{}
		if i == 0 || sh.JobID != shares[i-1].JobID {
			base = sh.NTime
		}
		st, known := s.prevState(shares, i, ctx)
		switch {
		case i == 0:
			c.id = uint64(sh.MinerID)
		case sh.MinerID >= shares[i-1].MinerID:
			c.id = uint64(sh.MinerID - shares[i-1].MinerID)
		default:
			c.flags |= flagNegID
			c.id = uint64(shares[i-1].MinerID - sh.MinerID)
		}
		if en2Size <= 8 {
			c.flags |= encodeEn2(c, sh.Extranonce2, st, known)
		}
		if sh.NTime != base {
			c.flags |= flagNTime
		}
		switch {
		case sh.VersionBits == 0:
		case sh.VersionBits&^vbitsShortMask == 0:
			c.flags |= vbitsShort
		default:
			c.flags |= vbitsLong
		}
		if known && st.diff == sh.Difficulty {
			c.flags |= diffSame
		} else {
			mode, m, x := encodeDiff(sh.Difficulty)
			c.flags |= mode
			c.mant, c.exp = m, x
		}
	}

	// Columns.
	for i := range s.codes {
		e.u8(s.codes[i].flags)
	}
	for i := range s.codes {
		e.uvarint(s.codes[i].id)
	}
	for i := range shares {
		if en2Size <= 8 {
			e.uvarint(s.codes[i].en2)
		} else {
			e.b = append(e.b, shares[i].Extranonce2...)
		}
	}
	for i := range shares {
		e.u32(shares[i].Nonce)
	}
	for i := range shares {
		switch s.codes[i].flags & flagVBitsMask {
		case vbitsShort:
			e.u16(uint16(shares[i].VersionBits >> 13))
		case vbitsLong:
			e.u32(shares[i].VersionBits)
		}
	}
	for i := range shares {
		if i == 0 || shares[i].JobID != shares[i-1].JobID {
			base = shares[i].NTime
		}
		if s.codes[i].flags&flagNTime != 0 {
			e.varint(int64(shares[i].NTime) - int64(base))
		}
	}
	for i := range shares {
		c := &s.codes[i]
		switch c.flags & flagDiffMask {
		case diffPow2:
			e.u8(uint8(c.exp))
		case diffDecimal:
			e.uvarint(c.mant)
			e.u8(uint8(c.exp))
		case diffFloat:
			e.f64(shares[i].Difficulty)
		}
	}
	e.uvarint(uint64(len(b.Rejects)))
	for _, r := range b.Rejects {
		e.uvarint(uint64(r.MinerID))
		e.u8(r.Reason)
		e.uvarint(uint64(r.Count))
	}
	ctx.update(shares)
	return e.b, nil
}

// encodeEn2 picks the shortest of: increase over the previous extranonce2
// (little- or big-endian) and the absolute value (little- or big-endian).
func encodeEn2(c *shareCode, en2 []byte, st minerState, known bool) (flags uint8) {
	le, be := leUint(en2), beUint(en2)
	c.en2 = le
	best := uvarintLen(le)
	try := func(v uint64, f uint8) {
		if n := uvarintLen(v); n < best {
			best, c.en2, flags = n, v, f
		}
	}
	try(be, flagEn2BE)
	if known && int(st.en2Len) == len(en2) {
		prev := st.en2[:st.en2Len]
		if p := leUint(prev); le >= p {
			try(le-p, flagEn2Delta)
		}
		if p := beUint(prev); be >= p {
			try(be-p, flagEn2Delta|flagEn2BE)
		}
	}
	return flags
}

func (s *batchScratch) decodeBatch(out *ShareBatch, body []byte, ctx *shareContext) error {
	d := newDecoder(body)
	var b ShareBatch
	b.BatchID = d.Uvarint()
	b.Time = d.time()
	en2Size := int(d.U8())

	// Job runs.
	type group struct {
		job   string
		base  uint32
		count int
	}
	ng := d.Length(MaxBatchGroups, 7, "job runs")
	var groups []group
	total := 0
	if d.Err() == nil && ng > 0 {
		groups = make([]group, ng)
		for i := range groups {
			g := &groups[i]
			g.job = d.Str(1, MaxNameLen, "job id")
			g.base = d.U32()
			g.count = d.Length(MaxBatchShares, 0, "run")
			if d.Err() == nil && g.count == 0 {
				d.Failf("%w: empty job run", ErrInvalid)
			}
			total += g.count
			if d.Err() == nil && total > MaxBatchShares {
				d.Failf("%w: %d shares, limit %d", ErrTooLong, total, MaxBatchShares)
			}
		}
	}
	switch {
	case d.Err() != nil:
	case total == 0 && en2Size != 0, total > 0 && (en2Size == 0 || en2Size > MaxExtranonce):
		d.Failf("%w: extranonce2 size %d for %d shares", ErrInvalid, en2Size, total)
	case total*minShareBytes > d.Rest():
		d.Fail(ErrShort)
	}
	if d.Err() != nil {
		return d.finish(TypeShareBatch)
	}
	if total == 0 {
		b.Rejects = decodeRejects(&d)
		if err := d.finish(TypeShareBatch); err != nil {
			return err
		}
		*out = b
		return nil
	}

	// Flags.
	flags := d.Take(total)
	for i, f := range flags {
		switch {
		case f&flagVBitsMask == flagVBitsMask:
			d.Failf("%w: share %d version bits mode", ErrInvalid, i)
		case en2Size > 8 && f&(flagEn2Delta|flagEn2BE) != 0:
			d.Failf("%w: share %d extranonce2 mode with %d-byte extranonce2", ErrInvalid, i, en2Size)
		case i == 0 && f&flagNegID != 0:
			d.Failf("%w: first share with a relative miner id", ErrInvalid)
		}
	}
	if total > 0 {
		b.Shares = make([]Share, total)
	}
	shares := b.Shares
	k := 0
	for _, g := range groups {
		for range g.count {
			shares[k].JobID, shares[k].NTime = g.job, g.base
			k++
		}
	}

	// Miner ids.
	var id uint64
	for i := 0; i < total && d.Err() == nil; i++ {
		v := d.Uvarint()
		switch {
		case i == 0:
			id = v
		case flags[i]&flagNegID != 0:
			if v > id {
				d.Failf("%w: share %d miner id below 0", ErrInvalid, i)
			}
			id -= v
		default:
			if v > math.MaxUint32 {
				d.Failf("%w: share %d miner id step %d", ErrInvalid, i, v)
			}
			id += v
		}
		if d.Err() == nil && (id == 0 || id > math.MaxUint32) {
			d.Failf("%w: share %d miner id %d", ErrInvalid, i, id)
		}
		shares[i].MinerID = uint32(id)
	}
	if d.Err() != nil {
		return d.finish(TypeShareBatch)
	}
	s.linkPrev(shares)

	// Extranonce2.
	en2 := make([]byte, total*en2Size)
	for i := 0; i < total && d.Err() == nil; i++ {
		dst := en2[i*en2Size : (i+1)*en2Size : (i+1)*en2Size]
		shares[i].Extranonce2 = dst
		if en2Size > 8 {
			copy(dst, d.Take(en2Size))
			continue
		}
		v := d.Uvarint()
		be := flags[i]&flagEn2BE != 0
		if flags[i]&flagEn2Delta != 0 {
			st, known := s.prevState(shares, i, ctx)
			if !known || int(st.en2Len) != en2Size {
				d.Failf("%w: share %d extranonce2 delta", ErrNoContext, i)
				break
			}
			p := leUint(st.en2[:en2Size])
			if be {
				p = beUint(st.en2[:en2Size])
			}
			if v > math.MaxUint64-p {
				d.Failf("%w: share %d extranonce2 overflows", ErrInvalid, i)
				break
			}
			v += p
		}
		if en2Size < 8 && v>>(8*en2Size) != 0 {
			d.Failf("%w: share %d extranonce2 %#x does not fit %d bytes", ErrInvalid, i, v, en2Size)
			break
		}
		if be {
			putBE(dst, v)
		} else {
			putLE(dst, v)
		}
	}

	// Nonces, version bits, ntime.
	for i := 0; i < total && d.Err() == nil; i++ {
		shares[i].Nonce = d.U32()
	}
	for i := 0; i < total && d.Err() == nil; i++ {
		switch flags[i] & flagVBitsMask {
		case vbitsShort:
			v := d.U16()
			if d.Err() == nil && v == 0 {
				d.Failf("%w: share %d zero version bits in short form", ErrInvalid, i)
			}
			shares[i].VersionBits = uint32(v) << 13
		case vbitsLong:
			shares[i].VersionBits = d.U32()
		}
	}
	for i := 0; i < total && d.Err() == nil; i++ {
		if flags[i]&flagNTime != 0 {
			t := int64(shares[i].NTime) + d.Varint()
			if t < 0 || t > math.MaxUint32 {
				d.Failf("%w: share %d ntime %d", ErrInvalid, i, t)
			}
			shares[i].NTime = uint32(t)
		}
	}

	// Difficulty.
	for i := 0; i < total && d.Err() == nil; i++ {
		sh := &shares[i]
		switch flags[i] & flagDiffMask {
		case diffSame:
			st, known := s.prevState(shares, i, ctx)
			if !known {
				d.Failf("%w: share %d difficulty", ErrNoContext, i)
			}
			sh.Difficulty = st.diff
		case diffPow2:
			sh.Difficulty = math.Ldexp(1, int(int8(d.U8())))
		case diffDecimal:
			m := d.Uvarint()
			x := int8(d.U8())
			if d.Err() == nil {
				v, ok := decodeDecimal(m, x)
				if !ok {
					d.Failf("%w: share %d difficulty %de%d", ErrInvalid, i, m, x)
				}
				sh.Difficulty = v
			}
		case diffFloat:
			sh.Difficulty = d.F64()
		}
		if d.Err() == nil && !validDifficulty(sh.Difficulty) {
			d.Failf("%w: share %d difficulty %v", ErrInvalid, i, sh.Difficulty)
		}
	}
	b.Rejects = decodeRejects(&d)
	if err := d.finish(TypeShareBatch); err != nil {
		return err
	}
	ctx.update(shares)
	*out = b
	return nil
}

// decodeRejects reads a batch's reject counts.
func decodeRejects(d *decoder) []RejectCount {
	n := d.Length(MaxBatchRejects, 3, "reject counts")
	if d.Err() != nil || n == 0 {
		return nil
	}
	out := make([]RejectCount, n)
	for i := range out {
		out[i].MinerID = d.minerID()
		out[i].Reason = d.U8()
		c := d.Uvarint()
		if d.Err() == nil && (c == 0 || c > math.MaxUint32) {
			d.Failf("%w: reject count %d", ErrInvalid, c)
		}
		out[i].Count = uint32(c)
		if d.Err() != nil {
			return nil
		}
	}
	return out
}

// pow10 holds the powers of ten float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

const maxMantissa = 1 << 53

// decodeDecimal returns m·10^e, correctly rounded (one exact operand and
// one IEEE operation), so a difficulty written with few decimal digits, as
// vardiff rounds them, survives exactly.
func decodeDecimal(m uint64, e int8) (float64, bool) {
	if m == 0 || m >= maxMantissa || e < -22 || e > 22 {
		return 0, false
	}
	if e >= 0 {
		return float64(m) * pow10[e], true
	}
	return float64(m) / pow10[-e], true
}

// encodeDiff returns the shortest exact encoding of a valid difficulty.
func encodeDiff(d float64) (mode uint8, mant uint64, exp int8) {
	if frac, e := math.Frexp(d); frac == 0.5 && e-1 >= math.MinInt8 && e-1 <= math.MaxInt8 {
		return diffPow2, 0, int8(e - 1)
	}
	if m, x, ok := decimalOf(d); ok && uvarintLen(m)+1 < 8 {
		return diffDecimal, m, x
	}
	return diffFloat, 0, 0
}

// decimalOf finds a short m, e with decodeDecimal(m, e) == d: the fewest
// fraction digits, or for integers the most trailing zeros stripped.
func decimalOf(d float64) (uint64, int8, bool) {
	if d == math.Trunc(d) {
		if d < maxMantissa {
			m, e := uint64(d), int8(0)
			for e < 22 && m%10 == 0 {
				if v, ok := decodeDecimal(m/10, e+1); !ok || v != d {
					break
				}
				m, e = m/10, e+1
			}
			return m, e, true
		}
		for k := 22; k >= 1; k-- {
			f := math.Round(d / pow10[k])
			if f <= 0 || f >= maxMantissa {
				continue
			}
			if v, ok := decodeDecimal(uint64(f), int8(k)); ok && v == d {
				return uint64(f), int8(k), true
			}
		}
		return 0, 0, false
	}
	for k := 1; k <= 22; k++ {
		f := math.Round(d * pow10[k])
		if f <= 0 || f >= maxMantissa {
			continue
		}
		if v, ok := decodeDecimal(uint64(f), int8(-k)); ok && v == d {
			return uint64(f), int8(-k), true
		}
	}
	return 0, 0, false
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func leUint(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func putLE(dst []byte, v uint64) {
	for i := range dst {
		dst[i] = byte(v)
		v >>= 8
	}
}

func putBE(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte(v)
		v >>= 8
	}
}
