"""The explorer's vendored browser libraries: which files of which pinned npm packages it serves.

`static/vendor/` holds copies of the files below, taken from `assets/node_modules` (installed
from `assets/package-lock.json` by `make test`), with each package's licence and a
`VENDORED.json` recording package, version, source path, licence and sha256. The app serves
only these copies: nothing is fetched from a CDN at run time. Tests check the copies byte for
byte against the installed packages; `python -m aicommons.explorer.assets` refreshes them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from aicommons.commit import read_json_file

ASSETS_DIR = Path(__file__).with_name("assets")
STATIC_DIR = Path(__file__).with_name("static")
VENDOR_DIR = STATIC_DIR / "vendor"
MANIFEST = VENDOR_DIR / "VENDORED.json"


@dataclass(frozen=True)
class VendoredFile:
    """One file the app serves from an npm package: where it comes from and where it goes."""

    package: str
    source: str  # path inside the package
    target: str  # file name under static/vendor
    licence_file: str  # the package's licence text, copied beside it


VENDORED = (
    VendoredFile("htmx.org", "dist/htmx.min.js", "htmx.min.js", "LICENSE"),
    VendoredFile("chart.js", "dist/chart.umd.min.js", "chart.umd.min.js", "LICENSE.md"),
    # The OpenAPI page at /docs (FastAPI's default would load these from a CDN).
    VendoredFile("swagger-ui-dist", "swagger-ui-bundle.js", "swagger-ui-bundle.js", "LICENSE"),
    VendoredFile("swagger-ui-dist", "swagger-ui.css", "swagger-ui.css", "LICENSE"),
)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_dir(package: str, node_modules: Path | None = None) -> Path:
    return (node_modules or ASSETS_DIR / "node_modules") / package


def describe(node_modules: Path | None = None) -> list[dict[str, str]]:
    """VENDORED.json's entries as the installed packages describe them."""
    entries = []
    for item in VENDORED:
        root = package_dir(item.package, node_modules)
        meta = read_json_file(root / "package.json", what="package.json", max_bytes=1 << 20)
        entries.append(
            {
                "package": item.package,
                "version": str(meta["version"]),
                "licence": str(meta.get("license", "")),
                "source": item.source,
                "file": item.target,
                "licence_file": f"{item.package}.{item.licence_file}",
                "sha256": sha256_file(root / item.source),
            }
        )
    return entries


def vendor(node_modules: Path | None = None) -> list[dict[str, str]]:
    """Copy the pinned files and licences into static/vendor and rewrite VENDORED.json."""
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    entries = describe(node_modules)
    for item, entry in zip(VENDORED, entries, strict=True):
        root = package_dir(item.package, node_modules)
        shutil.copyfile(root / item.source, VENDOR_DIR / item.target)
        shutil.copyfile(root / item.licence_file, VENDOR_DIR / entry["licence_file"])
    MANIFEST.write_text(json.dumps(entries, indent=2) + "\n")
    return entries


if __name__ == "__main__":
    for row in vendor():
        print(f"{row['package']}@{row['version']} {row['source']} -> static/vendor/{row['file']}")
