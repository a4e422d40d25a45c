"""Build the installable WordPress plugin: `make wordpress-plugin` -> dist/tradingrobotplug.zip.

The plugin's own files come from wordpress/tradingrobotplug/; the chart library is copied in
from npm's node_modules/lightweight-charts (the repository commits no third-party files), with
its licence. The zip holds one top-level folder, `tradingrobotplug/`, as WordPress's "Upload
plugin" expects.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "wordpress" / "tradingrobotplug"
CHARTS = ROOT / "node_modules" / "lightweight-charts"
VENDOR_FILE = "lightweight-charts.standalone.production.js"


def build(out_dir: Path) -> Path:
    """The plugin folder, assembled under out_dir/tradingrobotplug (replaced if present)."""
    library = CHARTS / "dist" / VENDOR_FILE
    if not library.exists():
        raise SystemExit(f"{library} is missing: run `make setup` (npm ci) first")
    target = out_dir / "tradingrobotplug"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns(".*", "*~"))
    vendor = target / "assets" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    shutil.copy2(library, vendor / VENDOR_FILE)
    shutil.copy2(CHARTS / "LICENSE", vendor / "lightweight-charts.LICENSE.txt")
    return target


def package(zip_path: Path, work_dir: Path) -> Path:
    folder = build(work_dir)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder.parent).as_posix())
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, default=ROOT / "dist" / "tradingrobotplug.zip")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "wordpress")
    args = parser.parse_args(argv)
    print(package(args.zip, args.work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
