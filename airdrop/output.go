package airdrop

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// The files a run writes into its output directory.
const (
	AmountsFile   = "amounts.csv"   // index,address,amount: the awarded holders, amount descending
	BreakdownFile = "breakdown.csv" // every holder seen: base score, each rule's effect, the amount
	StandardFile  = "merkle-standard.json"
	UniswapFile   = "merkle-uniswap.json"
)

// Written is what WriteOutputs wrote: each file's sha256, and the roots.
type Written struct {
	Files map[string]string `json:"files"` // name → sha256
	Roots map[string]string `json:"roots"` // format → root
}

// Trees builds the merkle trees the rules ask for from the awarded rows
// (every holder must be an address).
func Trees(out *Outcome, r *Rules, workers int) (*StandardTree, *UniswapTree, error) {
	n := out.Awarded
	if len(r.Merkle.Formats) == 0 {
		return nil, nil, nil
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("%w: merkle: no holder gets an amount", ErrRule)
	}
	for i := 0; i < n; i++ {
		if !out.Rows[i].isAddr {
			return nil, nil, fmt.Errorf("merkle: holder %q (amounts row %d) is not an address: merkle leaves need "+
				"0x addresses (merkle.formats = [] writes no tree)", out.Rows[i].Holder, i)
		}
	}
	var st *StandardTree
	var ut *UniswapTree
	for _, f := range r.Merkle.Formats {
		switch f {
		case "standard":
			leaf := r.leaf()
			values := make([][]string, n)
			var chain string
			if r.Merkle.ChainID != nil {
				chain = r.Merkle.ChainID.String()
			}
			_ = parallel(n, workers, func(lo, hi int) error {
				cells := make([]string, (hi-lo)*len(leaf))
				for i := lo; i < hi; i++ {
					v := cells[(i-lo)*len(leaf) : (i-lo+1)*len(leaf) : (i-lo+1)*len(leaf)]
					for k, field := range leaf {
						switch field {
						case "index":
							v[k] = strconv.Itoa(i)
						case "address":
							v[k] = core.Checksum(out.Rows[i].addr)
						case "amount":
							v[k] = out.Rows[i].Amount.String()
						case "chain_id":
							v[k] = chain
						}
					}
					values[i] = v
				}
				return nil
			})
			t, err := BuildStandard(values, r.LeafEncoding(), workers)
			if err != nil {
				return nil, nil, fmt.Errorf("merkle standard: %w", err)
			}
			st = t
		case "uniswap":
			claims := make([]Claim, n)
			for i := 0; i < n; i++ {
				claims[i] = Claim{out.Rows[i].Holder, out.Rows[i].Amount}
			}
			t, err := BuildUniswap(claims, workers)
			if err != nil {
				return nil, nil, fmt.Errorf("merkle uniswap: %w", err)
			}
			ut = t
		}
	}
	return st, ut, nil
}

// WriteOutputs writes the amounts, the breakdown and the trees into dir
// (each file written beside and renamed into place).
func WriteOutputs(dir string, out *Outcome, r *Rules, workers int) (*Written, error) {
	st, ut, err := Trees(out, r, workers)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	w := &Written{Files: map[string]string{}, Roots: map[string]string{}}
	put := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
		w.Files[name] = sha256Hex(data)
		return nil
	}
	if err := put(AmountsFile, amountsCSV(out)); err != nil {
		return nil, err
	}
	if err := put(BreakdownFile, breakdownCSV(out)); err != nil {
		return nil, err
	}
	if st != nil {
		d, err := st.Dump()
		if err != nil {
			return nil, err
		}
		if err := put(StandardFile, d); err != nil {
			return nil, err
		}
		w.Roots["standard"] = st.Root().String()
	}
	if ut != nil {
		d, err := ut.JSON()
		if err != nil {
			return nil, err
		}
		if err := put(UniswapFile, d); err != nil {
			return nil, err
		}
		w.Roots["uniswap"] = ut.Root().String()
	}
	return w, nil
}

func display(id string) string {
	if s, ok := core.ChecksumAddress(id); ok {
		return s
	}
	return id
}

func amountsCSV(out *Outcome) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write([]string{"index", "address", "amount"})
	for i := 0; i < out.Awarded; i++ {
		_ = cw.Write([]string{strconv.Itoa(i), display(out.Rows[i].Holder), out.Rows[i].Amount.String()})
	}
	cw.Flush()
	return b.Bytes()
}

// BreakdownColumns are breakdown.csv's columns.
var BreakdownColumns = []string{"holder", "status", "rule", "score", "weighted_score", "held_seconds", "twab",
	"transformed", "duration_multiplier", "balance_multiplier", "weight", "capped", "epoch_amount",
	"previous_amount", "amount"}

func breakdownCSV(out *Outcome) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write(BreakdownColumns)
	scale := new(big.Int).Mul(RatioScale, RatioScale)
	for i := range out.Rows {
		r := &out.Rows[i]
		_ = cw.Write([]string{display(r.Holder), r.Status, r.Rule, r.Score.String(), r.Weighted.String(),
			strconv.FormatInt(r.Held, 10), r.TWAB.String(), r.Transformed.String(), r.DurationMult.Text,
			r.BalanceMult.Text, decimal(r.Weight, scale, 36), strconv.FormatBool(r.Capped), r.EpochAmount.String(),
			r.Previous.String(), r.Amount.String()})
	}
	cw.Flush()
	return b.Bytes()
}

// decimal is x / 10^places exactly, as a decimal without trailing zeros.
func decimal(x, scale *big.Int, places int) string {
	q, m := new(big.Int).QuoRem(x, scale, new(big.Int))
	if m.Sign() == 0 {
		return q.String()
	}
	f := fmt.Sprintf("%0*s", places, m.String())
	return q.String() + "." + strings.TrimRight(f, "0")
}

// ReadAmounts reads an amounts.csv (a previous epoch): canonical holder →
// amount. A malformed row, a repeated holder or a non-positive amount is an
// error naming the line.
func ReadAmounts(path string) (map[string]*big.Int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = 3
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "index,address,amount" {
		return nil, fmt.Errorf("%s:1: header is not index,address,amount", path)
	}
	out := make(map[string]*big.Int, len(recs)-1)
	for i, rec := range recs[1:] {
		line := i + 2
		if rec[0] != strconv.Itoa(i) {
			return nil, fmt.Errorf("%s:%d: index %q, want %d", path, line, rec[0], i)
		}
		a, ok := new(big.Int).SetString(rec[2], 10)
		if !ok || a.Sign() <= 0 {
			return nil, fmt.Errorf("%s:%d: amount %q is not a positive integer", path, line, rec[2])
		}
		h := core.CanonicalID(rec[1])
		if _, dup := out[h]; dup {
			return nil, fmt.Errorf("%s:%d: holder %s appears twice", path, line, rec[1])
		}
		out[h] = a
	}
	return out, nil
}
