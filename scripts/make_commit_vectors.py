"""Regenerate docs/test-vectors/commitments.json from aicommons.commit.

Run only when the commitment format changes on purpose (a protocol change); the test suite checks
the committed file against the code, and the Vyper verifier tests read the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

from aicommons.commit import MerkleTree, canonical_json, cid_of, keccak256

OUT = Path(__file__).resolve().parent.parent / "docs" / "test-vectors" / "commitments.json"


def leaves_for(count: int) -> list[bytes]:
    return [f"leaf-{i}".encode() for i in range(count)]


def main() -> None:
    merkle = []
    for count in (0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17):
        leaves = leaves_for(count)
        tree = MerkleTree.from_leaves(leaves)
        merkle.append(
            {
                "leaves": ["0x" + leaf.hex() for leaf in leaves],
                "root": "0x" + tree.root.hex(),
                "proofs": [tree.prove(i).to_json() for i in range(count)],
            }
        )
    keccak = [
        {"input": "0x" + d.hex(), "keccak256": "0x" + keccak256(d).hex()} for d in (b"", b"abc")
    ]
    canonical = [
        {"value": v, "canonical": canonical_json(v).decode()}
        for v in ({"b": 1, "a": [True, None, "é"]}, {"z": {"y": -1, "x": "2"}}, [])
    ]
    cids = [{"input": "0x" + d.hex(), "cid": cid_of(d)} for d in (b"", b"aicommons")]
    payload = {"keccak256": keccak, "canonical_json": canonical, "cid": cids, "merkle": merkle}
    OUT.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
