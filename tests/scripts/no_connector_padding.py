#!/usr/bin/env python3
"""Fails when a Connector construction in the README, the examples, the tests or the benchmarks
pads parts it leaves at their defaults with {} (write them by name: {{.system = sys}})."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
files = [root / "README.md"]
for folder, patterns in (("examples", ["*.cpp"]), ("tests", ["*.cpp", "*.hpp"]), ("bench", ["*.cpp"]), ("cli", ["*.cpp"])):
    for pattern in patterns:
        files += sorted((root / folder).rglob(pattern))
# A connector type named in a statement, then two empty braces as arguments before its end.
statement = re.compile(r"(Connector<|Client\b|Quiet\b|Metered<)[^;]*?\{\}\s*,\s*\{\}", re.S)
found = []
for f in files:
    if f.name == "connector_positional_padding.cpp":  # the static test that shows it cannot compile
        continue
    text = f.read_text()
    for m in statement.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        found.append(f"{f.relative_to(root)}:{line}: {{}} padding in a connector construction")
for message in found:
    print(message)
print(f"no_connector_padding: {len(files)} files, {len(found)} padded constructions")
sys.exit(1 if found else 0)
