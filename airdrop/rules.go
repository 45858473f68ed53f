package airdrop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Rules is a campaign: who is eligible, who is excluded, the multipliers,
// the transform, the cap and the merkle output. It is what campaign.toml
// declares (the Python package reads the TOML into this JSON shape, one key
// for one key); an unknown key is an error naming it.
type Rules struct {
	Eligibility Eligibility `json:"eligibility"`
	Exclude     Exclude     `json:"exclude"`
	Multipliers Multipliers `json:"multipliers"`
	// Transform is applied to each holder's score before the multipliers
	// and the split: "none" (the default), "sqrt" (⌊√s⌋) or "log2"
	// (⌊2^32 · log2(1 + s)⌋, see Log2Fixed).
	Transform string `json:"transform,omitempty"`
	// Cap bounds any one holder's amount of this epoch's pool.
	Cap    *Amount     `json:"cap,omitempty"`
	Merkle MerkleRules `json:"merkle"`
}

// Eligibility: a holder must pass every rule given.
type Eligibility struct {
	// MinBalance held without a break for MinDuration inside the window
	// (in one token). Either alone: MinBalance for at least one second,
	// or any positive balance for MinDuration.
	MinBalance  *Amount   `json:"min_balance,omitempty"`
	MinDuration *Duration `json:"min_duration,omitempty"`
	// MinScore: the (token-weighted) score must be at least this.
	MinScore *Amount `json:"min_score,omitempty"`
	// Snapshot: the holder held a balance of at least SnapshotMinBalance
	// (default 1) of some token at this time.
	Snapshot           *int64  `json:"snapshot,omitempty"`
	SnapshotMinBalance *Amount `json:"snapshot_min_balance,omitempty"`
}

// Exclude: addresses that get nothing.
type Exclude struct {
	Addresses []string `json:"addresses,omitempty"`
	// Files of addresses, one a line ('#' starts a comment, blank lines
	// are skipped), relative to the rules file.
	Files []string `json:"files,omitempty"`
	// Contracts the user lists as contracts (pools, bridges, the token
	// itself), inline or in files as above.
	Contracts     []string `json:"contracts,omitempty"`
	ContractFiles []string `json:"contract_files,omitempty"`
	// Burn excludes the zero address and the common burn addresses
	// (BurnAddresses); on unless set to false.
	Burn *bool `json:"burn,omitempty"`
}

// BurnAddresses are excluded unless exclude.burn = false.
var BurnAddresses = []string{
	"0x0000000000000000000000000000000000000000",
	"0x000000000000000000000000000000000000dead",
	"0xdead000000000000000042069420694206942069",
}

// Multipliers scale a holder's transformed score. Tiers: the highest tier
// whose At the holder reached applies (none: ×1); At strictly increases.
type Multipliers struct {
	// Duration tiers by the longest unbroken stretch the holder held a
	// positive balance (of one token) inside the window.
	Duration []DurationTier `json:"duration,omitempty"`
	// Balance tiers by the holder's time-weighted average balance over the
	// window: ⌊token-weighted score / window seconds⌋.
	Balance []BalanceTier `json:"balance,omitempty"`
	// Tokens weighs each token's score (multi-token campaigns; keys are
	// token ids, addresses in any case). With it, holds of an unlisted
	// token count for nothing; without it, holds of more than one token
	// are an error (their units differ).
	Tokens map[string]Ratio `json:"tokens,omitempty"`
}

type DurationTier struct {
	At         Duration `json:"at"`
	Multiplier Ratio    `json:"multiplier"`
}

type BalanceTier struct {
	At         Amount `json:"at"`
	Multiplier Ratio  `json:"multiplier"`
}

// MerkleRules: the trees written.
type MerkleRules struct {
	// Leaf is the StandardMerkleTree leaf's fields, in order, from
	// "index" (uint256: the row in amounts.csv), "address", "amount"
	// (uint256) and "chain_id" (uint256, from ChainID). Default
	// ["address", "amount"].
	Leaf    []string `json:"leaf,omitempty"`
	ChainID *Amount  `json:"chain_id,omitempty"`
	// Formats: "standard" (OpenZeppelin standard-v1) and/or "uniswap" (the
	// merkle-distributor's JSON). Default ["standard"]; [] writes no tree.
	Formats []string `json:"formats"`
}

// Amount is a non-negative integer (wei): a JSON integer or a decimal
// string.
type Amount struct{ big.Int }

func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return fmt.Errorf("%s is not a non-negative decimal integer", b)
	}
	a.SetString(s, 10)
	return nil
}

func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// Duration is whole seconds: a JSON integer, or a string of a number and a
// unit s, m, h, d or w ("90d").
type Duration struct{ Seconds int64 }

func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	unit := int64(1)
	if n := len(s); n > 0 {
		if u := strings.Index("smhdw", s[n-1:]); u >= 0 {
			unit = []int64{1, 60, 3600, 86400, 7 * 86400}[u]
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > core.MaxTime/unit {
		return fmt.Errorf("%s is not a duration (whole seconds, or a number and s/m/h/d/w, e.g. \"90d\")", b)
	}
	d.Seconds = v * unit
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Seconds) }

// RatioScale: multipliers are decimals of at most 18 places, applied as the
// integer multiplier × 10^18 (so they are exact).
var RatioScale = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)

// Ratio is a non-negative decimal of at most 18 places ("1.5", or the
// JSON number 1.5 read from its text), kept as Scaled = ratio × 10^18.
type Ratio struct {
	Text   string
	Scaled *big.Int
}

func (r *Ratio) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || strings.TrimLeft(whole, "0123456789") != "" || strings.TrimLeft(frac, "0123456789") != "" ||
		len(frac) > 18 {
		return fmt.Errorf("%s is not a multiplier (a decimal >= 0 with at most 18 places, e.g. \"1.5\")", b)
	}
	v, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", 18-len(frac)), 10)
	r.Text, r.Scaled = s, v
	return nil
}

func (r Ratio) MarshalJSON() ([]byte, error) { return json.Marshal(r.Text) }

func one() Ratio { return Ratio{"1", RatioScale} }

// ParseRules reads rules JSON; an unknown key, a malformed value or an
// inconsistent rule is an error naming it.
func ParseRules(data []byte) (*Rules, error) {
	var r Rules
	r.Merkle.Formats = []string{"standard"}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if dec.More() {
		return nil, errors.New("rules: data after the rules object")
	}
	return &r, r.check()
}

func (r *Rules) check() error {
	switch r.Transform {
	case "", "none", "sqrt", "log2":
	default:
		return fmt.Errorf("rules: transform %q: want none, sqrt or log2", r.Transform)
	}
	for i := 1; i < len(r.Multipliers.Duration); i++ {
		if r.Multipliers.Duration[i].At.Seconds <= r.Multipliers.Duration[i-1].At.Seconds {
			return fmt.Errorf("rules: multipliers.duration[%d]: at %ds is not above the tier before (%ds)", i,
				r.Multipliers.Duration[i].At.Seconds, r.Multipliers.Duration[i-1].At.Seconds)
		}
	}
	for i := 1; i < len(r.Multipliers.Balance); i++ {
		if r.Multipliers.Balance[i].At.Cmp(&r.Multipliers.Balance[i-1].At.Int) <= 0 {
			return fmt.Errorf("rules: multipliers.balance[%d]: at %s is not above the tier before (%s)", i,
				&r.Multipliers.Balance[i].At, &r.Multipliers.Balance[i-1].At)
		}
	}
	for _, t := range r.Multipliers.Duration {
		if t.Multiplier.Scaled == nil {
			return errors.New("rules: multipliers.duration: every tier needs at and multiplier")
		}
	}
	for _, t := range r.Multipliers.Balance {
		if t.Multiplier.Scaled == nil {
			return errors.New("rules: multipliers.balance: every tier needs at and multiplier")
		}
	}
	if (r.Eligibility.SnapshotMinBalance != nil) && r.Eligibility.Snapshot == nil {
		return errors.New("rules: eligibility.snapshot_min_balance needs eligibility.snapshot")
	}
	if s := r.Eligibility.Snapshot; s != nil && (*s < 0 || *s > core.MaxTime) {
		return fmt.Errorf("rules: eligibility.snapshot %d is out of range [0, %d]", *s, core.MaxTime)
	}
	seenField := map[string]bool{}
	for _, f := range r.leaf() {
		switch f {
		case "index", "address", "amount":
		case "chain_id":
			if r.Merkle.ChainID == nil {
				return errors.New("rules: merkle.leaf has chain_id: set merkle.chain_id")
			}
		default:
			return fmt.Errorf("rules: merkle.leaf field %q: want index, address, amount or chain_id", f)
		}
		if seenField[f] {
			return fmt.Errorf("rules: merkle.leaf has %q twice", f)
		}
		seenField[f] = true
	}
	if !seenField["address"] || !seenField["amount"] {
		return errors.New("rules: merkle.leaf needs address and amount")
	}
	seenFormat := map[string]bool{}
	for _, f := range r.Merkle.Formats {
		if f != "standard" && f != "uniswap" {
			return fmt.Errorf("rules: merkle.formats %q: want standard or uniswap", f)
		}
		if seenFormat[f] {
			return fmt.Errorf("rules: merkle.formats has %q twice", f)
		}
		seenFormat[f] = true
	}
	return nil
}

func (r *Rules) leaf() []string {
	if len(r.Merkle.Leaf) == 0 {
		return []string{"address", "amount"}
	}
	return r.Merkle.Leaf
}

// LeafEncoding is the StandardMerkleTree leaf's ABI types.
func (r *Rules) LeafEncoding() []string {
	var enc []string
	for _, f := range r.leaf() {
		if f == "address" {
			enc = append(enc, "address")
		} else {
			enc = append(enc, "uint256")
		}
	}
	return enc
}

// exclusion is one excluded address and the rule that excludes it.
type exclusion map[[20]byte]string

// InputFile is a file a campaign read (for the run manifest).
type InputFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// exclusions resolves the exclusion lists (files relative to dir).
func (r *Rules) exclusions(dir string) (exclusion, []InputFile, error) {
	ex := exclusion{}
	var files []InputFile
	add := func(rule, where, id string) error {
		b, ok := core.AddressBytes(id)
		if !ok {
			return fmt.Errorf("%s: %s: %q is not an address (0x and 40 hex digits)", rule, where, id)
		}
		if _, dup := ex[b]; !dup {
			ex[b] = rule
		}
		return nil
	}
	if r.Exclude.Burn == nil || *r.Exclude.Burn {
		for _, a := range BurnAddresses {
			_ = add("exclude.burn", "", a)
		}
	}
	for i, a := range r.Exclude.Addresses {
		if err := add("exclude.addresses", fmt.Sprintf("[%d]", i), a); err != nil {
			return nil, nil, err
		}
	}
	for i, a := range r.Exclude.Contracts {
		if err := add("exclude.contracts", fmt.Sprintf("[%d]", i), a); err != nil {
			return nil, nil, err
		}
	}
	for _, list := range []struct {
		rule  string
		paths []string
	}{{"exclude.files", r.Exclude.Files}, {"exclude.contract_files", r.Exclude.ContractFiles}} {
		for _, p := range list.paths {
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", list.rule, err)
			}
			files = append(files, InputFile{p, sha256Hex(data)})
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
			for line := 1; sc.Scan(); line++ {
				s, _, _ := strings.Cut(sc.Text(), "#")
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				if err := add(list.rule, fmt.Sprintf("%s:%d", p, line), s); err != nil {
					return nil, nil, err
				}
			}
			if err := sc.Err(); err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", list.rule, p, err)
			}
		}
	}
	return ex, files, nil
}
