// Command merkleroot prints the StandardMerkleTree root of the JSON array of
// [address, amount] values on stdin (scripts/bench-merkle.py's agreement check).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/poh-holdmetrics/poh-holdmetrics/airdrop"
)

func main() {
	var values [][]string
	if err := json.NewDecoder(os.Stdin).Decode(&values); err != nil {
		fmt.Fprintln(os.Stderr, "merkleroot:", err)
		os.Exit(1)
	}
	t, err := airdrop.BuildStandard(values, []string{"address", "uint256"}, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "merkleroot:", err)
		os.Exit(1)
	}
	fmt.Println(t.Root())
}
