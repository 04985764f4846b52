"""The JavaScript the explorer serves is exactly the pinned npm packages' files (no CDN, no
hand edits), with version and licence recorded."""

from __future__ import annotations

import json

from aicommons.explorer.assets import ASSETS_DIR, MANIFEST, VENDOR_DIR, describe, sha256_file


def test_vendored_files_match_the_pinned_npm_packages() -> None:
    node_modules = ASSETS_DIR / "node_modules"
    assert node_modules.is_dir(), (
        f"{node_modules} is missing: `make test` installs it (npm ci --prefix {ASSETS_DIR})"
    )
    lock = json.loads((ASSETS_DIR / "package-lock.json").read_text())
    recorded = json.loads(MANIFEST.read_text())
    assert recorded == describe(node_modules)
    for entry in recorded:
        assert lock["packages"][f"node_modules/{entry['package']}"]["version"] == entry["version"]
        assert sha256_file(VENDOR_DIR / entry["file"]) == entry["sha256"]
        assert (VENDOR_DIR / entry["licence_file"]).stat().st_size > 0
