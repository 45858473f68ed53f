// The reference implementations the Go tests compare with. Reads a JSON
// request on stdin, writes a JSON answer on stdout.
//   {"op": "standard", "values": [[...]], "encoding": [...]}   -> {"dump": JSON.stringify(tree.dump()), "root", "proofs": [[...]]}
//   {"op": "bench", "values", "encoding", "runs"}               -> {"ns": [per run: of() and every getProof()], "root"}
//   {"op": "load", "dump": <standard-v1 dump>}                  -> {"root", "proofs"} after load().validate()
//   {"op": "uniswap-verify", "distribution": <merkle-distributor JSON>}
//        -> {"ok": true} after checking every claim's proof against the root, with the leaf
//           keccak256(abi.encodePacked(uint256 index, address account, uint256 amount)) written
//           here from the merkle-distributor's published definition, and the checksummed keys
//           and tokenTotal.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { keccak256 } from "ethereum-cryptography/keccak.js";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const hex = (b) => "0x" + Buffer.from(b).toString("hex");
const fromHex = (h) => Buffer.from(h.slice(2), "hex");
const word = (n) => fromHex("0x" + BigInt(n).toString(16).padStart(64, "0"));
const hashPair = (a, b) => keccak256(Buffer.concat([a, b].sort(Buffer.compare)));

// EIP-55, from its definition: a hex letter is upper case where the keccak-256
// of the lowercase hex (ASCII) has a nibble >= 8.
function checksummed(addr) {
  const lower = addr.slice(2).toLowerCase();
  const h = Buffer.from(keccak256(Buffer.from(lower, "ascii"))).toString("hex");
  return "0x" + [...lower].map((c, i) => (parseInt(h[i], 16) >= 8 ? c.toUpperCase() : c)).join("");
}

function proofsOf(tree) {
  const out = [];
  for (const [i] of tree.entries()) out.push(tree.getProof(i));
  return out;
}

let answer;
switch (req.op) {
  case "standard": {
    const tree = StandardMerkleTree.of(req.values, req.encoding);
    answer = { dump: JSON.stringify(tree.dump()), root: tree.root, proofs: proofsOf(tree) };
    break;
  }
  case "load": {
    const tree = StandardMerkleTree.load(req.dump);
    tree.validate();
    answer = { root: tree.root, proofs: proofsOf(tree) };
    break;
  }
  case "uniswap-verify": {
    const d = req.distribution;
    let total = 0n;
    const indices = new Set();
    for (const [account, c] of Object.entries(d.claims)) {
      if (checksummed(account) !== account) throw new Error(`key ${account} is not checksummed`);
      const leaf = keccak256(Buffer.concat([word(c.index), fromHex(account.toLowerCase()), word(BigInt(c.amount))]));
      const root = c.proof.map(fromHex).reduce((acc, p) => hashPair(acc, p), Buffer.from(leaf));
      if (hex(root) !== d.merkleRoot) throw new Error(`claim ${c.index} (${account}) does not verify`);
      if (indices.has(c.index)) throw new Error(`index ${c.index} twice`);
      indices.add(c.index);
      total += BigInt(c.amount);
    }
    if (BigInt(d.tokenTotal) !== total) throw new Error(`tokenTotal ${d.tokenTotal} != sum ${total}`);
    if (d.numDrops !== indices.size) throw new Error(`numDrops ${d.numDrops} != ${indices.size}`);
    answer = { ok: true };
    break;
  }
  case "bench": {
    const ns = [];
    let root;
    for (let r = 0; r < req.runs; r++) {
      const t0 = process.hrtime.bigint();
      const tree = StandardMerkleTree.of(req.values, req.encoding);
      for (const [i] of tree.entries()) tree.getProof(i);
      ns.push(Number(process.hrtime.bigint() - t0));
      root = tree.root;
    }
    answer = { ns, root };
    break;
  }
  default:
    throw new Error(`unknown op ${req.op}`);
}
process.stdout.write(JSON.stringify(answer));
