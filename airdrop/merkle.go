package airdrop

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/crypto/sha3"
)

// Hash is a keccak-256 digest: a leaf or a node.
type Hash [32]byte

func (h Hash) String() string { return "0x" + hex.EncodeToString(h[:]) }

// keccak hashes the concatenation of parts.
func keccak(parts ...[]byte) Hash {
	k := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		k.Write(p)
	}
	var h Hash
	k.Sum(h[:0])
	return h
}

// hashPair is keccak256 of the two nodes in byte order (OpenZeppelin's and
// Uniswap's MerkleProof both sort each pair).
func hashPair(a, b *Hash) Hash {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return keccak(a[:], b[:])
}

// StandardTree is an OpenZeppelin StandardMerkleTree: leaves are
// keccak256(keccak256(abi.encode(value))), sorted, in a complete binary tree
// laid out in an array (node i's children at 2i+1 and 2i+2, the leaves at the
// end in reverse order), each pair hashed in byte order. Its Dump is the
// "standard-v1" JSON that @openzeppelin/merkle-tree's StandardMerkleTree.load
// reads, and its proofs verify with OpenZeppelin's MerkleProof.verify.
type StandardTree struct {
	LeafEncoding []string
	Values       [][]string // in input order
	Tree         []Hash
	TreeIndex    []int // Values[i] is leaf Tree[TreeIndex[i]]
}

// ErrDuplicate: two values encode to the same leaf.
var ErrDuplicate = errors.New("duplicate leaf")

// BuildStandard builds the tree of values (each row of len(encoding)
// strings), as StandardMerkleTree.of(values, encoding) does. Leaf hashing
// runs on up to workers goroutines (0: GOMAXPROCS); the tree is the same.
func BuildStandard(values [][]string, encoding []string, workers int) (*StandardTree, error) {
	if len(values) == 0 {
		return nil, errors.New("merkle tree: no values")
	}
	types := make([]abiType, len(encoding))
	for i, e := range encoding {
		t, err := parseType(e)
		if err != nil {
			return nil, err
		}
		types[i] = t
	}
	leaves := make([]Hash, len(values))
	if err := parallel(len(values), workers, func(lo, hi int) error {
		var buf []byte
		for i := lo; i < hi; i++ {
			var err error
			if buf, err = encode(buf[:0], types, values[i]); err != nil {
				return fmt.Errorf("value %d: %w", i, err)
			}
			inner := keccak(buf)
			leaves[i] = keccak(inner[:])
		}
		return nil
	}); err != nil {
		return nil, err
	}
	// Sorted as (leaf, value index) records: sequential memory, and most
	// comparisons settled by the first 8 bytes as one integer.
	type rec struct {
		head uint64
		leaf Hash
		i    int
	}
	order := make([]rec, len(values))
	for i := range order {
		order[i] = rec{binary.BigEndian.Uint64(leaves[i][:8]), leaves[i], i}
	}
	slices.SortFunc(order, func(a, b rec) int {
		if a.head != b.head {
			return cmp.Compare(a.head, b.head)
		}
		return cmp.Or(bytes.Compare(a.leaf[8:], b.leaf[8:]), cmp.Compare(a.i, b.i))
	})
	for k := 1; k < len(order); k++ {
		if order[k].leaf == order[k-1].leaf {
			return nil, fmt.Errorf("%w: values %d and %d (%v)", ErrDuplicate, order[k-1].i, order[k].i, values[order[k].i])
		}
	}
	n := len(values)
	t := &StandardTree{LeafEncoding: encoding, Values: values, Tree: make([]Hash, 2*n-1), TreeIndex: make([]int, n)}
	for k, r := range order {
		t.Tree[len(t.Tree)-1-k] = r.leaf
		t.TreeIndex[r.i] = len(t.Tree) - 1 - k
	}
	for i := len(t.Tree) - 1 - n; i >= 0; i-- {
		t.Tree[i] = hashPair(&t.Tree[2*i+1], &t.Tree[2*i+2])
	}
	return t, nil
}

// Root is the tree's root (what a claim contract stores).
func (t *StandardTree) Root() Hash { return t.Tree[0] }

// Proof is the proof of value i: the siblings from its leaf up.
func (t *StandardTree) Proof(i int) []Hash {
	j := t.TreeIndex[i]
	depth := 0
	for k := j; k > 0; k = (k - 1) / 2 {
		depth++
	}
	p := make([]Hash, 0, depth)
	for j > 0 {
		s := j - 1
		if j%2 == 1 {
			s = j + 1
		}
		p = append(p, t.Tree[s])
		j = (j - 1) / 2
	}
	return p
}

// StandardLeaf is the leaf of value under encoding.
func StandardLeaf(value, encoding []string) (Hash, error) {
	types := make([]abiType, len(encoding))
	for i, e := range encoding {
		t, err := parseType(e)
		if err != nil {
			return Hash{}, err
		}
		types[i] = t
	}
	buf, err := encode(nil, types, value)
	if err != nil {
		return Hash{}, err
	}
	inner := keccak(buf)
	return keccak(inner[:]), nil
}

// ProcessProof folds a proof over a leaf: the root it proves.
func ProcessProof(leaf Hash, proof []Hash) Hash {
	for i := range proof {
		leaf = hashPair(&leaf, &proof[i])
	}
	return leaf
}

// standardDump is the standard-v1 JSON, keys in @openzeppelin/merkle-tree's
// order so that a dump is byte for byte what its dump() writes.
type standardDump struct {
	Format       string          `json:"format"`
	LeafEncoding []string        `json:"leafEncoding"`
	Tree         []string        `json:"tree"`
	Values       []standardValue `json:"values"`
}

type standardValue struct {
	Value     []string `json:"value"`
	TreeIndex int      `json:"treeIndex"`
}

// Dump is the tree as standard-v1 JSON (compact, as JSON.stringify writes it).
func (t *StandardTree) Dump() ([]byte, error) {
	d := standardDump{Format: "standard-v1", LeafEncoding: t.LeafEncoding, Tree: make([]string, len(t.Tree)),
		Values: make([]standardValue, len(t.Values))}
	for i := range t.Tree {
		d.Tree[i] = t.Tree[i].String()
	}
	for i, v := range t.Values {
		d.Values[i] = standardValue{v, t.TreeIndex[i]}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// LoadStandard reads a standard-v1 dump and validates it whole: every node
// is the hash of its children, every value's leaf is where it says.
func LoadStandard(data []byte) (*StandardTree, error) {
	var d standardDump
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("merkle dump: %w", err)
	}
	if d.Format != "standard-v1" {
		return nil, fmt.Errorf("merkle dump: format %q, want standard-v1", d.Format)
	}
	t := &StandardTree{LeafEncoding: d.LeafEncoding, Tree: make([]Hash, len(d.Tree))}
	for i, h := range d.Tree {
		b, err := hexBytes(h)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("merkle dump: tree[%d] %q is not a 32-byte hex hash", i, h)
		}
		copy(t.Tree[i][:], b)
	}
	if len(t.Tree) == 0 {
		return nil, errors.New("merkle dump: empty tree")
	}
	for i := range t.Tree {
		l, r := 2*i+1, 2*i+2
		if r < len(t.Tree) && t.Tree[i] != hashPair(&t.Tree[l], &t.Tree[r]) {
			return nil, fmt.Errorf("merkle dump: node %d is not the hash of its children", i)
		}
		if r >= len(t.Tree) && l < len(t.Tree) {
			return nil, fmt.Errorf("merkle dump: node %d has one child: not a complete tree", i)
		}
	}
	for i, v := range d.Values {
		leaf, err := StandardLeaf(v.Value, d.LeafEncoding)
		if err != nil {
			return nil, fmt.Errorf("merkle dump: value %d: %w", i, err)
		}
		if v.TreeIndex < 0 || v.TreeIndex >= len(t.Tree) || 2*v.TreeIndex+1 < len(t.Tree) {
			return nil, fmt.Errorf("merkle dump: value %d: treeIndex %d is not a leaf", i, v.TreeIndex)
		}
		if t.Tree[v.TreeIndex] != leaf {
			return nil, fmt.Errorf("merkle dump: value %d %v is not the leaf at %d", i, v.Value, v.TreeIndex)
		}
		t.Values = append(t.Values, v.Value)
		t.TreeIndex = append(t.TreeIndex, v.TreeIndex)
	}
	return t, nil
}

// parallel runs f over [0, n) in up to workers contiguous parts.
func parallel(n, workers int, f func(lo, hi int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n/4096+1))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = f(lo, hi)
		}()
	}
	wg.Wait()
	for _, err := range errs { // the lowest part's error: the lowest failing row
		if err != nil {
			return err
		}
	}
	return nil
}
