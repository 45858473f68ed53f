package airdrop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Verified is what a verification found.
type Verified struct {
	Path   string `json:"path"`
	Format string `json:"format"` // standard or uniswap
	Root   string `json:"root"`
	Claims int    `json:"claims"`
	Total  string `json:"total"`
	// With an address: its claim, proof checked against the root.
	Claim *VerifiedClaim `json:"claim,omitempty"`
}

type VerifiedClaim struct {
	Address string   `json:"address"`
	Index   int      `json:"index"`
	Amount  string   `json:"amount"`
	Value   []string `json:"value,omitempty"` // standard: the leaf's values
	Proof   []string `json:"proof"`
}

// ErrNotClaimed: the address has no claim in the tree.
var ErrNotClaimed = errors.New("no claim")

// VerifyFile checks a merkle file whole — a standard-v1 dump (every node,
// every leaf) or a merkle-distributor JSON (every claim's proof, the total
// and the count) — and with address, that address's claim.
func VerifyFile(path, address string) (*Verified, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%s: not a merkle JSON: %w", path, err)
	}
	var want [20]byte
	if address != "" {
		var ok bool
		if want, ok = core.AddressBytes(address); !ok {
			return nil, fmt.Errorf("address %q is not an address (0x and 40 hex digits)", address)
		}
	}
	v := &Verified{Path: path}
	if _, ok := probe["format"]; ok {
		t, err := LoadStandard(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		v.Format, v.Root, v.Claims = "standard", t.Root().String(), len(t.Values)
		addrCol, amtCol := -1, -1
		for k, e := range t.LeafEncoding {
			if e == "address" && addrCol < 0 {
				addrCol = k
			}
			if strings.HasPrefix(e, "uint") {
				amtCol = k // the last uint column: the amount
			}
		}
		total := new(big.Int)
		for i, val := range t.Values {
			if amtCol >= 0 {
				a, _ := parseInt(val[amtCol])
				total.Add(total, a)
			}
			if address != "" && addrCol >= 0 {
				if b, _ := core.AddressBytes(val[addrCol]); b == want && v.Claim == nil {
					proof := t.Proof(i)
					leaf, _ := StandardLeaf(val, t.LeafEncoding)
					if ProcessProof(leaf, proof) != t.Root() {
						return nil, fmt.Errorf("%s: value %d: the proof does not reach the root", path, i)
					}
					amt := ""
					if amtCol >= 0 {
						amt = val[amtCol]
					}
					v.Claim = &VerifiedClaim{Address: val[addrCol], Index: i, Amount: amt, Value: val, Proof: hexes(proof)}
				}
			}
		}
		v.Total = total.String()
	} else {
		if err := verifyUniswap(data, v, address, want); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if address != "" && v.Claim == nil {
		return v, fmt.Errorf("%s: %w for %s", path, ErrNotClaimed, address)
	}
	return v, nil
}

func hexes(hs []Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

func verifyUniswap(data []byte, v *Verified, address string, want [20]byte) error {
	var d struct {
		MerkleRoot string `json:"merkleRoot"`
		TokenTotal string `json:"tokenTotal"`
		NumDrops   *int   `json:"numDrops"`
		Claims     map[string]struct {
			Index  int      `json:"index"`
			Amount string   `json:"amount"`
			Proof  []string `json:"proof"`
		} `json:"claims"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return fmt.Errorf("not a merkle-distributor JSON: %w", err)
	}
	rb, err := hexBytes(d.MerkleRoot)
	if err != nil || len(rb) != 32 {
		return fmt.Errorf("merkleRoot %q is not a 32-byte hash", d.MerkleRoot)
	}
	var root Hash
	copy(root[:], rb)
	accounts := make([]string, 0, len(d.Claims))
	for a := range d.Claims {
		accounts = append(accounts, a)
	}
	slices.Sort(accounts)
	total := new(big.Int)
	seen := map[int]string{}
	for _, a := range accounts {
		c := d.Claims[a]
		if _, ok := core.AddressBytes(a); !ok {
			return fmt.Errorf("claim key %q is not an address", a)
		}
		amt, ok := parseInt(c.Amount)
		if !ok || amt.Sign() <= 0 {
			return fmt.Errorf("claim %s: amount %q is not a positive integer", a, c.Amount)
		}
		if prev, dup := seen[c.Index]; dup {
			return fmt.Errorf("claims %s and %s have index %d", prev, a, c.Index)
		}
		seen[c.Index] = a
		proof := make([]Hash, len(c.Proof))
		for k, p := range c.Proof {
			b, err := hexBytes(p)
			if err != nil || len(b) != 32 {
				return fmt.Errorf("claim %s: proof[%d] %q is not a 32-byte hash", a, k, p)
			}
			copy(proof[k][:], b)
		}
		if ProcessProof(UniswapLeaf(c.Index, a, amt), proof) != root {
			return fmt.Errorf("claim %s (index %d): the proof does not reach merkleRoot", a, c.Index)
		}
		total.Add(total, amt)
		if address != "" {
			if b, _ := core.AddressBytes(a); b == want {
				v.Claim = &VerifiedClaim{Address: a, Index: c.Index, Amount: amt.String(), Proof: c.Proof}
			}
		}
	}
	if t, ok := parseInt(d.TokenTotal); !ok || t.Cmp(total) != 0 {
		return fmt.Errorf("tokenTotal %s is not the sum of the claims (%s)", d.TokenTotal, total)
	}
	if d.NumDrops != nil && *d.NumDrops != len(d.Claims) {
		return fmt.Errorf("numDrops %d, but %d claims", *d.NumDrops, len(d.Claims))
	}
	v.Format, v.Root, v.Claims, v.Total = "uniswap", root.String(), len(d.Claims), total.String()
	return nil
}

// VerifyDir checks a run's output directory: each merkle file whole, that
// each tree holds exactly amounts.csv's claims, and, when a manifest.json is
// there, that every output file has the sha256 it lists.
func VerifyDir(dir, address string) ([]*Verified, error) {
	amounts, err := ReadAmounts(filepath.Join(dir, AmountsFile))
	if err != nil {
		return nil, err
	}
	var out []*Verified
	for _, name := range []string{StandardFile, UniswapFile} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		v, err := VerifyFile(p, address)
		if err != nil {
			return out, err
		}
		if err := sameClaims(p, amounts); err != nil {
			return out, err
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no %s or %s", dir, StandardFile, UniswapFile)
	}
	mp := filepath.Join(dir, "manifest.json")
	if data, err := os.ReadFile(mp); err == nil {
		var m struct {
			Outputs map[string]string `json:"outputs"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return out, fmt.Errorf("%s: %w", mp, err)
		}
		names := make([]string, 0, len(m.Outputs))
		for n := range m.Outputs {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			data, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				return out, fmt.Errorf("%s: output %s: %w", mp, n, err)
			}
			if got := sha256Hex(data); got != m.Outputs[n] {
				return out, fmt.Errorf("%s: output %s has sha256 %s, the manifest says %s", mp, n, got, m.Outputs[n])
			}
		}
	}
	return out, nil
}

// sameClaims checks that the tree at p holds exactly amounts' claims.
func sameClaims(p string, amounts map[string]*big.Int) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	got := map[string]string{}
	var d struct {
		LeafEncoding []string `json:"leafEncoding"`
		Values       []struct {
			Value []string `json:"value"`
		} `json:"values"`
		Claims map[string]struct {
			Amount string `json:"amount"`
		} `json:"claims"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	addrCol, amtCol := slices.Index(d.LeafEncoding, "address"), -1
	for k, e := range d.LeafEncoding {
		if strings.HasPrefix(e, "uint") {
			amtCol = k
		}
	}
	for _, v := range d.Values {
		if addrCol >= 0 && amtCol >= 0 {
			got[core.CanonicalID(v.Value[addrCol])] = v.Value[amtCol]
		}
	}
	for a, c := range d.Claims {
		n, _ := parseInt(c.Amount)
		got[core.CanonicalID(a)] = n.String()
	}
	if len(got) != len(amounts) {
		return fmt.Errorf("%s has %d claims, %s has %d", p, len(got), AmountsFile, len(amounts))
	}
	for a, amt := range amounts {
		if got[a] != amt.String() {
			return fmt.Errorf("%s: %s claims %q, %s says %s", p, a, got[a], AmountsFile, amt)
		}
	}
	return nil
}
