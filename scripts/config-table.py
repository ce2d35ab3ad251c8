#!/usr/bin/python3
"""Rewrites README.md's configuration table from the settings table in
src/core/config.c, as printed by `transitd config --markdown`.

usage: scripts/config-table.py [path/to/transitd]   (default build/transitd)

tests/unit/test_config.c fails while the two differ; run this after
changing a setting, and commit README.md with the change.
"""
import subprocess
import sys
from pathlib import Path

HEADER = "| variable | default | values | meaning |"

root = Path(__file__).resolve().parent.parent
binary = sys.argv[1] if len(sys.argv) > 1 else str(root / "build" / "transitd")
table = subprocess.run([binary, "config", "--markdown"], check=True, capture_output=True, text=True).stdout
readme = root / "README.md"
lines = readme.read_text().split("\n")
start = lines.index(HEADER)
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
lines[start:end] = table.rstrip("\n").split("\n")
readme.write_text("\n".join(lines))
print(f"README.md: {end - start - 2} rows replaced by {table.count(chr(10)) - 2}")
