#!/usr/bin/env python3
"""Replaces one marked section of docs/benchmarks.md with text from stdin, so that benchmark
numbers reach the document only from the commands that measured them.

    some-benchmark | python3 benches/doc_section.py SECTION

The section is the text between `<!-- SECTION:begin -->` and `<!-- SECTION:end -->`.
"""

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def replace(section, text):
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    doc = DOC.read_text()
    if begin not in doc or end not in doc:
        raise SystemExit(f"{DOC} lacks the {begin} / {end} markers")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{begin}\n{text.strip()}\n{end}{tail}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    replace(sys.argv[1], sys.stdin.read())
