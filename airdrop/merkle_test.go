package airdrop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

type standardAnswer struct {
	Dump   string     `json:"dump"`
	Root   string     `json:"root"`
	Proofs [][]string `json:"proofs"`
}

// randAmount is a random integer of up to n bytes.
func randAmount(r *rand.Rand, n int) *big.Int {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return new(big.Int).SetBytes(b)
}

func randAddress(r *rand.Rand) string {
	var b [20]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return fmt.Sprintf("0x%x", b)
}

// The cases the npm library builds the same tree from: the default leaf, an
// indexed leaf with a chain id, every static and dynamic type, the golden
// inputs of @openzeppelin/merkle-tree's own dumps (["a".."f"] as string),
// one value, two, and sizes around powers of two.
func standardCases() []struct {
	name     string
	encoding []string
	values   [][]string
} {
	r := rand.New(rand.NewPCG(1, 2))
	type c = struct {
		name     string
		encoding []string
		values   [][]string
	}
	var cases []c
	letters := [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}}
	cases = append(cases, c{"golden-string", []string{"string"}, letters})
	for _, n := range []int{1, 2, 3, 7, 8, 9, 100} {
		var vs [][]string
		for i := 0; i < n; i++ {
			amt := randAmount(r, 1+r.IntN(32))
			vs = append(vs, []string{randAddress(r), amt.String()})
		}
		cases = append(cases, c{fmt.Sprintf("address-uint256-%d", n), []string{"address", "uint256"}, vs})
	}
	var idx [][]string
	for i := 0; i < 33; i++ {
		idx = append(idx, []string{fmt.Sprint(i), randAddress(r), fmt.Sprint(r.Uint64())})
	}
	cases = append(cases, c{"index-address-uint256", []string{"uint256", "address", "uint256"}, idx})
	var chain [][]string
	for i := 0; i < 10; i++ {
		chain = append(chain, []string{"8453", randAddress(r), fmt.Sprint(r.Uint64())})
	}
	cases = append(cases, c{"chainid-address-uint256", []string{"uint256", "address", "uint256"}, chain})
	cases = append(cases, c{"types", []string{"bool", "int256", "uint8", "bytes32", "bytes4", "bytes", "string", "int64"},
		[][]string{
			{"true", "-1", "255", "0x" + strings.Repeat("ab", 32), "0xdeadbeef", "0x", "", "-9223372036854775808"},
			{"false", "57896044618658097711785492504343953926634992332820282019728792003956564819967", "0",
				"0x" + strings.Repeat("00", 32), "0x00000000", "0x0102030405", "héllo ✓", "9223372036854775807"},
			{"true", "-57896044618658097711785492504343953926634992332820282019728792003956564819968", "7",
				"0x" + strings.Repeat("ff", 32), "0xffffffff", "0x" + strings.Repeat("11", 70), strings.Repeat("long string ", 9), "0"},
		}})
	return cases
}

func TestStandardMatchesOpenZeppelin(t *testing.T) {
	for _, tc := range standardCases() {
		t.Run(tc.name, func(t *testing.T) {
			tree, err := BuildStandard(tc.values, tc.encoding, 0)
			if err != nil {
				t.Fatal(err)
			}
			var want standardAnswer
			oracle(t, map[string]any{"op": "standard", "values": tc.values, "encoding": tc.encoding}, &want)
			if got := tree.Root().String(); got != want.Root {
				t.Fatalf("root %s, @openzeppelin/merkle-tree %s", got, want.Root)
			}
			for i := range tc.values {
				if got := hexes(tree.Proof(i)); strings.Join(got, ",") != strings.Join(want.Proofs[i], ",") {
					t.Fatalf("proof %d: %v, want %v", i, got, want.Proofs[i])
				}
				leaf, err := StandardLeaf(tc.values[i], tc.encoding)
				if err != nil {
					t.Fatal(err)
				}
				if ProcessProof(leaf, tree.Proof(i)) != tree.Root() {
					t.Fatalf("proof %d does not verify", i)
				}
			}
			dump, err := tree.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if string(dump) != want.Dump {
				t.Fatalf("dump differs from dump():\n ours %s\n npm  %s", dump, want.Dump)
			}
			// The library loads and validates our dump, and we load its.
			var loaded struct {
				Root   string     `json:"root"`
				Proofs [][]string `json:"proofs"`
			}
			oracle(t, map[string]any{"op": "load", "dump": json.RawMessage(dump)}, &loaded)
			if loaded.Root != want.Root {
				t.Fatalf("npm load of our dump: root %s, want %s", loaded.Root, want.Root)
			}
			back, err := LoadStandard([]byte(want.Dump))
			if err != nil {
				t.Fatal(err)
			}
			if back.Root() != tree.Root() || len(back.Values) != len(tc.values) {
				t.Fatalf("LoadStandard of npm's dump: root %s with %d values", back.Root(), len(back.Values))
			}
		})
	}
}

func TestStandardRefusals(t *testing.T) {
	addr := "0xabcdefabcdefabcdefabcdefabcdefabcdefabcd"
	for _, tc := range []struct {
		encoding []string
		values   [][]string
		want     string
	}{
		{[]string{"address", "uint256"}, [][]string{{addr, "1"}, {"0x12", "2"}}, `value 1`},
		{[]string{"address", "uint256"}, [][]string{{addr, "-1"}}, `value 0`},
		{[]string{"address", "uint256"}, [][]string{{addr, "1.5"}}, `value 0`},
		{[]string{"uint8"}, [][]string{{"256"}}, `value 0`},
		{[]string{"int8"}, [][]string{{"-129"}}, `value 0`},
		{[]string{"bytes4"}, [][]string{{"0x0102"}}, `value 0`},
		{[]string{"bool"}, [][]string{{"yes"}}, `value 0`},
		{[]string{"address", "uint256"}, [][]string{{addr}}, `value 0`},
		{[]string{"uint7"}, [][]string{{"1"}}, `uint7`},
		{[]string{"tuple"}, [][]string{{"1"}}, `tuple`},
		{[]string{"address", "uint256"}, nil, `no values`},
	} {
		_, err := BuildStandard(tc.values, tc.encoding, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want one naming %q", tc.encoding, tc.values, err, tc.want)
		}
	}
	// The same value twice is a duplicate leaf, naming both rows; an
	// address in another case is the same address.
	_, err := BuildStandard([][]string{{addr, "5"}, {"0x2222222222222222222222222222222222222222", "5"},
		{"0x" + strings.ToUpper(addr[2:]), "5"}}, []string{"address", "uint256"}, 0)
	if !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), "values 0 and 2") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestLoadStandardRefusesTampering(t *testing.T) {
	tc := standardCases()[3] // 7 values
	tree, err := BuildStandard(tc.values, tc.encoding, 0)
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := tree.Dump()
	if _, err := LoadStandard(dump); err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(dump, &d); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(map[string]any)) []byte {
		var c map[string]any
		_ = json.Unmarshal(dump, &c)
		f(c)
		b, _ := json.Marshal(c)
		return b
	}
	for name, bad := range map[string][]byte{
		"amount changed": mutate(func(c map[string]any) {
			c["values"].([]any)[2].(map[string]any)["value"].([]any)[1] = "1"
		}),
		"node changed": mutate(func(c map[string]any) {
			c["tree"].([]any)[1] = "0x" + strings.Repeat("00", 32)
		}),
		"index moved": mutate(func(c map[string]any) {
			c["values"].([]any)[0].(map[string]any)["treeIndex"] = 0.0
		}),
		"format":        mutate(func(c map[string]any) { c["format"] = "simple-v1" }),
		"unknown field": mutate(func(c map[string]any) { c["extra"] = 1.0 }),
		"not json":      []byte(`{"format":`),
	} {
		if _, err := LoadStandard(bad); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// The parallel leaf hashing gives the same tree as one worker.
func TestStandardWorkersSame(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var vs [][]string
	for i := 0; i < 20000; i++ {
		vs = append(vs, []string{randAddress(r), fmt.Sprint(r.Uint64())})
	}
	one, err := BuildStandard(vs, []string{"address", "uint256"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	many, err := BuildStandard(vs, []string{"address", "uint256"}, 7)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := one.Dump()
	b, _ := many.Dump()
	if !bytes.Equal(a, b) {
		t.Fatal("dumps differ between 1 and 7 workers")
	}
}

func TestUniswapVerifiesWithItsLeafDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 3, 5, 16, 17, 100} {
		var claims []Claim
		for i := 0; i < n; i++ {
			claims = append(claims, Claim{randAddress(r), new(big.Int).SetUint64(1 + r.Uint64()>>r.IntN(64))})
		}
		tree, err := BuildUniswap(claims, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range claims {
			if ProcessProof(UniswapLeaf(i, c.Account, c.Amount), tree.Proof(i)) != tree.Root() {
				t.Fatalf("n=%d: claim %d does not verify", n, i)
			}
		}
		js, err := tree.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var ok struct{ OK bool }
		oracle(t, map[string]any{"op": "uniswap-verify", "distribution": json.RawMessage(js)}, &ok)
		if !ok.OK {
			t.Fatalf("n=%d: oracle did not confirm", n)
		}
	}
}

func TestUniswapRefusals(t *testing.T) {
	a := "0x1111111111111111111111111111111111111111"
	b := "0x2222222222222222222222222222222222222222"
	c := "0xabcdefabcdefabcdefabcdefabcdefabcdefabcd"
	for _, tc := range []struct {
		claims []Claim
		want   string
	}{
		{nil, "no claims"},
		{[]Claim{{a, big.NewInt(1)}, {"0xzz", big.NewInt(1)}}, "claim 1"},
		{[]Claim{{a, big.NewInt(1)}, {b, big.NewInt(0)}}, "claim 1"},
		{[]Claim{{a, big.NewInt(-1)}}, "claim 0"},
		{[]Claim{{a, new(big.Int).Lsh(big.NewInt(1), 256)}}, "claim 0"},
		{[]Claim{{c, big.NewInt(1)}, {b, big.NewInt(2)}, {"0x" + strings.ToUpper(c[2:]), big.NewInt(3)}}, "claim 2"},
	} {
		_, err := BuildUniswap(tc.claims, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %q", tc.claims, err, tc.want)
		}
	}
}
