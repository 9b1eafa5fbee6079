"""Prints the Nth fenced shell command of README.md's `## Quick start` section.

CI runs the README's own command, so the two can never drift apart.
"""
import pathlib
import re
import sys

readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
section = re.search(r"^## Quick start\n(.*?)(?=^## )", readme.read_text(), re.M | re.S)
blocks = re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", section.group(1) if section else "",
                    re.M | re.S)
index = int(sys.argv[1]) - 1
if len(blocks) != 2 or not 0 <= index < len(blocks):
    sys.exit(f"README.md's Quick start must hold exactly two shell commands; found {len(blocks)}")
print(blocks[index].strip())
