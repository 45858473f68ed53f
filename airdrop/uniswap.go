package airdrop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// The Uniswap merkle-distributor's format: claim i of account with amount is
// the leaf keccak256(abi.encodePacked(uint256 i, address account, uint256
// amount)); the leaves are sorted (and deduplicated) and paired up level by
// level, an odd last node carried up unpaired, each pair hashed in byte
// order. Its JSON (scripts/generate-merkle-root.ts's output) is
// {merkleRoot, tokenTotal, numDrops, claims: {ChecksummedAddress: {index,
// amount, proof}}} with amounts in ethers' BigNumber hex.

// Claim is one account's amount (an integer in the token's smallest unit).
type Claim struct {
	Account string // an address, any case
	Amount  *big.Int
}

// UniswapTree is a built distribution: claims in index order, their leaves,
// and the layers (leaves sorted, then each layer up to the root).
type UniswapTree struct {
	Claims []Claim
	leaves []Hash
	layers [][]Hash
	pos    map[Hash]int // leaf → position in layers[0]
}

// BuildUniswap builds the distribution of claims, in the order given (index
// i is claims[i]). An account that is not an address, a repeated account, or
// an amount that is not positive or does not fit uint256, is an error naming
// the claim.
func BuildUniswap(claims []Claim, workers int) (*UniswapTree, error) {
	if len(claims) == 0 {
		return nil, errors.New("merkle tree: no claims")
	}
	seen := make(map[[20]byte]int, len(claims))
	max256 := new(big.Int).Lsh(big.NewInt(1), 256)
	for i, c := range claims {
		a, ok := core.AddressBytes(c.Account)
		if !ok {
			return nil, fmt.Errorf("claim %d: account %q is not an address (0x and 40 hex digits)", i, c.Account)
		}
		if j, dup := seen[a]; dup {
			return nil, fmt.Errorf("claim %d: account %s appears twice (claim %d)", i, c.Account, j)
		}
		seen[a] = i
		if c.Amount == nil || c.Amount.Sign() <= 0 || c.Amount.Cmp(max256) >= 0 {
			return nil, fmt.Errorf("claim %d (%s): amount %v must be in [1, 2^256)", i, c.Account, c.Amount)
		}
	}
	t := &UniswapTree{Claims: claims, leaves: make([]Hash, len(claims))}
	if err := parallel(len(claims), workers, func(lo, hi int) error {
		var buf [84]byte
		for i := lo; i < hi; i++ {
			t.leaves[i] = uniswapLeaf(&buf, i, claims[i])
		}
		return nil
	}); err != nil {
		return nil, err
	}
	layer := slices.Clone(t.leaves)
	slices.SortFunc(layer, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	layer = slices.Compact(layer)
	t.pos = make(map[Hash]int, len(layer))
	for i, h := range layer {
		t.pos[h] = i
	}
	t.layers = [][]Hash{layer}
	for len(layer) > 1 {
		next := make([]Hash, (len(layer)+1)/2)
		for i := 0; i < len(layer); i += 2 {
			if i+1 == len(layer) {
				next[i/2] = layer[i] // the odd one goes up unpaired
			} else {
				next[i/2] = hashPair(&layer[i], &layer[i+1])
			}
		}
		t.layers = append(t.layers, next)
		layer = next
	}
	return t, nil
}

func uniswapLeaf(buf *[84]byte, index int, c Claim) Hash {
	*buf = [84]byte{}
	big.NewInt(int64(index)).FillBytes(buf[:32])
	a, _ := core.AddressBytes(c.Account)
	copy(buf[32:52], a[:])
	c.Amount.FillBytes(buf[52:84])
	return keccak(buf[:])
}

// UniswapLeaf is the leaf of claim index.
func UniswapLeaf(index int, account string, amount *big.Int) Hash {
	var buf [84]byte
	return uniswapLeaf(&buf, index, Claim{account, amount})
}

// Root is the distribution's merkle root.
func (t *UniswapTree) Root() Hash { return t.layers[len(t.layers)-1][0] }

// Proof is claim i's proof.
func (t *UniswapTree) Proof(i int) []Hash {
	idx := t.pos[t.leaves[i]]
	p := make([]Hash, 0, len(t.layers))
	for _, layer := range t.layers {
		pair := idx + 1
		if idx%2 == 1 {
			pair = idx - 1
		}
		if pair < len(layer) {
			p = append(p, layer[pair])
		}
		idx /= 2
	}
	return p
}

type uniswapClaim struct {
	Index  int      `json:"index"`
	Amount string   `json:"amount"`
	Proof  []string `json:"proof"`
}

// ethersHex is ethers v5's BigNumber.toHexString: 0x and an even number of
// hex digits.
func ethersHex(n *big.Int) string {
	h := n.Text(16)
	if len(h)%2 == 1 {
		h = "0" + h
	}
	return "0x" + h
}

// JSON is the distribution in the merkle-distributor's format (claims keyed
// by checksummed address, in index order).
func (t *UniswapTree) JSON() ([]byte, error) {
	total := new(big.Int)
	var buf bytes.Buffer
	buf.WriteString(`{"merkleRoot":"` + t.Root().String() + `","tokenTotal":"`)
	for _, c := range t.Claims {
		total.Add(total, c.Amount)
	}
	buf.WriteString(ethersHex(total) + `","numDrops":` + fmt.Sprint(len(t.Claims)) + `,"claims":{`)
	for i, c := range t.Claims {
		if i > 0 {
			buf.WriteByte(',')
		}
		cs, _ := core.ChecksumAddress(c.Account)
		key, _ := json.Marshal(cs)
		buf.Write(key)
		proof := t.Proof(i)
		pc := uniswapClaim{Index: i, Amount: ethersHex(c.Amount), Proof: make([]string, len(proof))}
		for k, h := range proof {
			pc.Proof[k] = h.String()
		}
		v, err := json.Marshal(pc)
		if err != nil {
			return nil, err
		}
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteString("}}")
	return buf.Bytes(), nil
}
