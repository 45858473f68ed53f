package airdrop

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// benchHolders is the benchmark's size: 1M holders (AIRDROP_HOLDERS
// overrides; -short, as make test runs it, uses 2000).
func benchHolders(b *testing.B) int {
	if s := os.Getenv("AIRDROP_HOLDERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	if testing.Short() {
		return 2000
	}
	return 1_000_000
}

func benchHolds(n int) *core.Holds {
	r := rand.New(rand.NewPCG(7, 8))
	h := &core.Holds{Pairs: make([]core.Pair, n), Rows: make([]core.HoldRow, n)}
	for i := range h.Pairs {
		h.Pairs[i] = core.Pair{Token: "0x00000000000000000000000000000000000000aa", Holder: randAddress(r)}
		h.Rows[i] = core.HoldRow{Pair: int32(i), Start: int64(r.IntN(86400))}
		h.Rows[i].Weight.SetFromBig(randAmount(r, 10))
	}
	return h
}

// BenchmarkAirdrop: exact holds of n holders → rules → amounts → the
// StandardMerkleTree and every proof (scripts/bench-airdrop.sh runs the npm
// library on the same amounts in the same run).
func BenchmarkAirdrop(b *testing.B) {
	n := benchHolders(b)
	h := benchHolds(n)
	// The pool: 10^21 a holder on average, at most 4 × that each.
	unit, _ := new(big.Int).SetString("1000000000000000000000", 10)
	pool := new(big.Int).Mul(unit, big.NewInt(int64(n)))
	rules, err := ParseRules([]byte(fmt.Sprintf(`{"multipliers": {"duration": [{"at": "12h", "multiplier": "1.5"}]}, "cap": "%s"}`,
		new(big.Int).Mul(unit, big.NewInt(4)))))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		out, err := Run(h, Campaign{Rules: rules, T0: 0, T1: 86400, Now: 86400, Pool: pool})
		if err != nil {
			b.Fatal(err)
		}
		st, _, err := Trees(out, rules, 0)
		if err != nil {
			b.Fatal(err)
		}
		for i := range st.Values {
			_ = st.Proof(i)
		}
	}
	b.ReportMetric(float64(n), "holders")
}

// BenchmarkStandardTree: n (address, uint256) values → root and every proof.
// AIRDROP_VALUES=FILE reads the values from a JSON array of [address, amount]
// (scripts/bench-merkle.py gives the npm library the same file).
func BenchmarkStandardTree(b *testing.B) {
	var values [][]string
	if p := os.Getenv("AIRDROP_VALUES"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(data, &values); err != nil {
			b.Fatal(err)
		}
	} else {
		values = StandardBenchValues(benchHolders(b))
	}
	n := len(values)
	b.ReportAllocs()
	for b.Loop() {
		t, err := BuildStandard(values, []string{"address", "uint256"}, 0)
		if err != nil {
			b.Fatal(err)
		}
		for i := range values {
			_ = t.Proof(i)
		}
	}
	b.ReportMetric(float64(n), "leaves")
}

// StandardBenchValues is the benchmark's generated input.
func StandardBenchValues(n int) [][]string {
	r := rand.New(rand.NewPCG(9, 10))
	values := make([][]string, n)
	for i := range values {
		values[i] = []string{randAddress(r), fmt.Sprint(randAmount(r, 12))}
	}
	return values
}
