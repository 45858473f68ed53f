package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"github.com/poh-holdmetrics/poh-holdmetrics/airdrop"
)

// poh_airdrop: the campaign, merkle output and verification (airdrop/), one
// JSON request in, one JSON answer out.

type airdropRequest struct {
	Op       string          `json:"op"`
	Rules    json.RawMessage `json:"rules"`
	RulesDir string          `json:"rules_dir"`
	Window   *[2]int64       `json:"window"`
	Now      *int64          `json:"now"`
	Pool     string          `json:"pool"`
	Out      string          `json:"out"`
	Previous string          `json:"previous"`
	Path     string          `json:"path"`
	Address  string          `json:"address"`
	Workers  int             `json:"workers"`
}

func campaignError(err error) error {
	return &statusError{statusCampaign, err.Error()}
}

//export poh_airdrop
func poh_airdrop(holds C.poh_handle, request *C.char, result *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return status(e, func() error {
		if request == nil || result == nil {
			return argError("request and result must not be NULL")
		}
		var req airdropRequest
		dec := json.NewDecoder(bytes.NewReader([]byte(C.GoString(request))))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return campaignError(fmt.Errorf("poh_airdrop request: %w", err))
		}
		var answer any
		var err error
		switch req.Op {
		case "run":
			answer, err = airdropRun(holds, &req)
		case "verify":
			answer, err = airdropVerify(&req)
		case "check":
			if len(req.Rules) == 0 {
				err = errors.New("poh_airdrop check: rules are required")
			} else if _, err = airdrop.ParseRules(req.Rules); err == nil {
				answer = struct{}{}
			}
		default:
			err = fmt.Errorf("poh_airdrop request: op %q: want run, verify or check", req.Op)
		}
		if err != nil {
			var se *statusError
			if errors.As(err, &se) {
				return err
			}
			return campaignError(err)
		}
		js, err := json.Marshal(answer)
		if err != nil {
			return err
		}
		*result = C.poh_handle(newHandle(&textResult{string(js)}))
		return nil
	}())
}

type runAnswer struct {
	Epoch   epochJSON           `json:"epoch"`
	Holders int                 `json:"holders"`
	Awarded int                 `json:"awarded"`
	Total   string              `json:"total"`
	Removed map[string]int      `json:"removed"`
	Roots   map[string]string   `json:"roots"`
	Files   map[string]string   `json:"files"`
	Inputs  []airdrop.InputFile `json:"inputs"`
	Span    int64               `json:"window_seconds"`
	Rules   json.RawMessage     `json:"rules"`
}

type epochJSON struct {
	Index int    `json:"index"`
	Pools string `json:"pools"`
}

func airdropRun(holds C.poh_handle, req *airdropRequest) (any, error) {
	if holds == 0 {
		return nil, errBadHandle
	}
	h, ok := lookup[*holdsResult](holds)
	if !ok {
		return nil, errBadHandle
	}
	if req.Window == nil || req.Now == nil || req.Out == "" || req.Pool == "" || len(req.Rules) == 0 {
		return nil, errors.New("poh_airdrop run: rules, window, now, pool and out are required")
	}
	rules, err := airdrop.ParseRules(req.Rules)
	if err != nil {
		return nil, err
	}
	pool, ok := new(big.Int).SetString(req.Pool, 10)
	if !ok || pool.Sign() < 0 {
		return nil, fmt.Errorf("pool %q is not an integer >= 0", req.Pool)
	}
	c := airdrop.Campaign{Rules: rules, Dir: req.RulesDir, T0: req.Window[0], T1: req.Window[1], Now: *req.Now, Pool: pool}
	if req.Previous != "" {
		prev, err := readEpoch(req.Previous)
		if err != nil {
			return nil, err
		}
		c.Previous = prev
	}
	out, err := airdrop.Run(h.h, c)
	if err != nil {
		return nil, err
	}
	w, err := airdrop.WriteOutputs(req.Out, out, rules, req.Workers)
	if err != nil {
		return nil, err
	}
	canon, _ := json.Marshal(rules)
	return runAnswer{Epoch: epochJSON{out.Epoch.Index, out.Epoch.Pools.String()}, Holders: len(out.Rows),
		Awarded: out.Awarded, Total: out.Total.String(), Removed: out.Removed, Roots: w.Roots, Files: w.Files,
		Inputs: out.Inputs, Span: out.Span, Rules: canon}, nil
}

// readEpoch reads a previous run's output directory: its amounts.csv and
// its manifest's epoch.
func readEpoch(dir string) (*airdrop.Epoch, error) {
	amounts, err := airdrop.ReadAmounts(filepath.Join(dir, airdrop.AmountsFile))
	if err != nil {
		return nil, fmt.Errorf("previous epoch: %w", err)
	}
	mp := filepath.Join(dir, "manifest.json")
	data, err := os.ReadFile(mp)
	if err != nil {
		return nil, fmt.Errorf("previous epoch: %w", err)
	}
	var m struct {
		Epoch *epochJSON `json:"epoch"`
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Epoch == nil {
		return nil, fmt.Errorf("previous epoch: %s has no epoch {index, pools} (%v)", mp, err)
	}
	pools, ok := new(big.Int).SetString(m.Epoch.Pools, 10)
	if !ok || pools.Sign() < 0 || m.Epoch.Index < 1 {
		return nil, fmt.Errorf("previous epoch: %s: epoch %+v is malformed", mp, *m.Epoch)
	}
	return &airdrop.Epoch{Index: m.Epoch.Index, Pools: pools, Amounts: amounts}, nil
}

func airdropVerify(req *airdropRequest) (any, error) {
	if req.Path == "" {
		return nil, errors.New("poh_airdrop verify: path is required")
	}
	st, err := os.Stat(req.Path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return airdrop.VerifyDir(req.Path, req.Address)
	}
	v, err := airdrop.VerifyFile(req.Path, req.Address)
	if err != nil {
		return nil, err
	}
	return []*airdrop.Verified{v}, nil
}
