package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

// poh_airdrop: transfers → holds → rules → files, then verify, through the C
// API; bad requests and rules are POH_ERR_CAMPAIGN naming what is wrong.
func TestAirdropThroughC(t *testing.T) {
	leakCheck(t)
	zero := "0x0000000000000000000000000000000000000000"
	a, b, c := "0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000B2",
		"0x00000000000000000000000000000000000000c3"
	tok := "0x00000000000000000000000000000000000000ee"
	rows := capitest.TransferRows{
		Time:   []int64{0, 0, 50, 60},
		Token:  []string{tok, tok, tok, tok},
		From:   []string{zero, zero, a, b},
		To:     []string{a, b, c, zero},
		Values: []string{"1000", "3000", "400", "3000"},
	}
	dir := filepath.ToSlash(t.TempDir()) // goes into JSON strings: no Windows backslashes
	req := func(extra string) string {
		return `{"op": "run", "rules": {"merkle": {"formats": ["standard", "uniswap"]}}, "window": [0, 100], "now": 100,
			"pool": "1000000", "out": "` + dir + `"` + extra + `}`
	}
	text, err := capitest.Airdrop(&rows, 0, req(""))
	if err.Code != capitest.OK {
		t.Fatal(err)
	}
	var ans struct {
		Epoch   struct{ Index int }
		Holders int
		Awarded int
		Total   string
		Roots   map[string]string
		Files   map[string]string
	}
	if e := json.Unmarshal([]byte(text), &ans); e != nil {
		t.Fatal(e)
	}
	// a: 1000×50 + 600×50 = 80000; b: 3000×60 = 180000; c: 400×50 = 20000.
	if ans.Holders != 3 || ans.Awarded != 3 || ans.Total != "1000000" || ans.Epoch.Index != 1 || len(ans.Files) != 4 {
		t.Fatalf("answer %s", text)
	}
	amounts, _ := os.ReadFile(filepath.Join(dir, "amounts.csv"))
	want := "index,address,amount\n0,0x00000000000000000000000000000000000000b2,642857\n" +
		"1,0x00000000000000000000000000000000000000A1,285714\n2,0x00000000000000000000000000000000000000C3,71429\n"
	if string(amounts) != want {
		t.Fatalf("amounts.csv:\n%s\nwant\n%s", amounts, want)
	}
	v, err := capitest.Airdrop(nil, 0, `{"op": "verify", "path": "`+dir+`", "address": "`+strings.ToLower(b)+`"}`)
	if err.Code != capitest.OK || !strings.Contains(v, ans.Roots["standard"]) || !strings.Contains(v, `"amount":"642857"`) {
		t.Fatalf("verify: %+v %s", err, v)
	}
	for _, bad := range []struct{ req, want string }{
		{`{"op": "run", "pool": "1"}`, "rules, window, now, pool and out are required"},
		{`{"op": "fly"}`, `op "fly"`},
		{`{"op": "check", "rules": {"cap": "ten"}}`, `"ten"`},
		{`{"op": "check", "rules": {"caps": 1}}`, `unknown field "caps"`},
		{`{"op": "verify", "path": "` + dir + `", "extra": 1}`, `unknown field "extra"`},
		{req(`, "previous": "` + dir + "/nowhere" + `"`), "previous epoch"},
	} {
		if _, err := capitest.Airdrop(&rows, 0, bad.req); err.Code != capitest.Campaign || !strings.Contains(err.Message, bad.want) {
			t.Errorf("%s: %+v, want POH_ERR_CAMPAIGN naming %q", bad.req, err, bad.want)
		}
	}
	// run needs a holds result.
	if _, err := capitest.Airdrop(nil, 0, req("")); err.Code != capitest.BadHandle {
		t.Fatalf("run without holds: %+v", err)
	}
}
