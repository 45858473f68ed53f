#!/usr/bin/env python3
"""The merkle benchmark, ours next to the reference in the same run: N (address, uint256)
values -> the StandardMerkleTree's root and every proof, built by airdrop.BuildStandard (Go,
`go test -bench BenchmarkStandardTree`) and by @openzeppelin/merkle-tree's
StandardMerkleTree.of + getProof (Node), on the same values file. Prints each side's median
over RUNS runs and the ratio; both roots must agree. Timing covers building and proving only
(each side parses the values first, outside the timed part).

    scripts/bench-merkle.py [N] [RUNS]      (default 20000 3; needs make deps for the npm side)
"""
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rnd = random.Random(42)
    values = [["0x" + rnd.randbytes(20).hex(), str(rnd.getrandbits(rnd.randint(1, 96)))] for _ in range(n)]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "values.json")
        with open(path, "w") as f:
            json.dump(values, f)
        go = subprocess.run(["go", "test", "-run", "^$", "-bench", "^BenchmarkStandardTree$", "-benchtime", "1x",
                             "-count", str(runs), "./airdrop"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "AIRDROP_VALUES": path})
        if go.returncode:
            sys.stderr.write(go.stdout + go.stderr)
            return 1
        go_ns = [float(m) for m in re.findall(r"BenchmarkStandardTree\S*\s+\d+\s+(\d+) ns/op", go.stdout)]
        oracle = os.path.join(ROOT, "tests", "npm", "oracle.mjs")
        if not os.path.isdir(os.path.join(ROOT, "tests", "npm", "node_modules", "@openzeppelin")):
            sys.stderr.write("bench-merkle: npm oracle not installed (make deps)\n")
            return 1
        req = json.dumps({"op": "bench", "values": values, "encoding": ["address", "uint256"], "runs": runs})
        js = subprocess.run(["node", "--max-old-space-size=8192", oracle], input=req, capture_output=True,
                            text=True)
        if js.returncode:
            sys.stderr.write(js.stderr)
            return 1
        ans = json.loads(js.stdout)
    # The Go root, once, for the agreement check.
    check = subprocess.run(["go", "run", "./scripts/merkleroot"], cwd=ROOT, input=json.dumps(values),
                           capture_output=True, text=True)
    go_med, js_med = statistics.median(go_ns) / 1e9, statistics.median(ans["ns"]) / 1e9
    print(f"merkle, {n} leaves (address, uint256), root + every proof, median of {runs}:")
    print(f"  poh-holdmetrics (Go)            {go_med * 1000:10.1f} ms")
    print(f"  @openzeppelin/merkle-tree (JS)  {js_med * 1000:10.1f} ms")
    print(f"  ratio JS / Go                   {js_med / go_med:10.1f}x")
    if check.returncode == 0:
        same = check.stdout.strip() == ans["root"]
        print(f"  roots {'agree' if same else 'DIFFER'}: {ans['root']}")
        if not same:
            return 1
    else:
        sys.stderr.write(check.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
