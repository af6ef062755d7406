#!/usr/bin/env python3
"""Reports the library's files and functions that may be too large to read in one sitting.

    python3 scripts/check-sizes.py [--max-file-lines 300] [--max-function-lines 60] [--strict]

A report, not a rule: files are split by idea, and a large file is a question to ask of it (does
it hold two ideas?), not a limit to cut it to. Every .cpp/.cppm/.hpp under modules/, policies/ and
cli/ over 300 lines a file or 60 a function body (from the line of its signature's opening brace
to its closing brace, lambdas inside counted with their function) is named. Functions are found by matching braces after comments and literals are
blanked out: a brace block whose header ends in `)` (optionally followed by const, noexcept,
override, a trailing return type...) and does not start with a control keyword is a function.
Prints the largest file and function, and every one over the sizes; exits 0 (1 with --strict, for
a local look, when there is one).
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONTROL = re.compile(r"^\s*(if|for|while|switch|catch|do|else|return|namespace|class|struct|union|enum|export|extern)\b")
TAIL = re.compile(r"\)\s*(const|noexcept(\([^)]*\))?|override|final|volatile|&|&&|mutable|\s|->\s*[\w:<>,\s*&]+)*$")


def blank_comments_and_literals(text: str) -> str:
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c); i = j + 1
        else:
            out.append(c); i += 1
    return "".join(out)


def functions(path: pathlib.Path):
    text = blank_comments_and_literals(path.read_text())
    stack = []  # (is_function_start, line)
    inside = 0  # depth of the outermost function we are in (0: none)
    last_boundary = 0
    line = 1
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        elif c == "{":
            header = text[last_boundary:i].strip()
            is_function = (not inside and header and TAIL.search(header) is not None
                           and not CONTROL.match(header.split("\n")[-1]) and "=" not in header.split("(")[0]
                           and not header.lstrip().startswith("["))
            if is_function:
                start_line = line - header.count("\n")
                stack.append((True, start_line, header.split("(")[0].split()[-1] if "(" in header else header))
                inside = len(stack)
            else:
                stack.append((False, line, ""))
            last_boundary = i + 1
        elif c == "}":
            if stack:
                is_function, start, name = stack.pop()
                if is_function:
                    inside = 0
                    yield name, start, line - start + 1
            last_boundary = i + 1
        elif c == ";":
            last_boundary = i + 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-file-lines", type=int, default=300)
    parser.add_argument("--max-function-lines", type=int, default=60)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a file or function is over")
    args = parser.parse_args()
    files = sorted(p for d in ("modules", "policies", "cli") for p in (ROOT / d).rglob("*") if p.suffix in (".cpp", ".cppm", ".hpp"))
    over, biggest_file, biggest_function = [], (0, ""), (0, "")
    for path in files:
        rel = path.relative_to(ROOT)
        n = len(path.read_text().splitlines())
        biggest_file = max(biggest_file, (n, str(rel)))
        if n > args.max_file_lines:
            over.append(f"{rel}: {n} lines (limit {args.max_file_lines})")
        for name, start, length in functions(path):
            biggest_function = max(biggest_function, (length, f"{rel}:{start} {name}"))
            if length > args.max_function_lines:
                over.append(f"{rel}:{start}: function {name} is {length} lines (limit {args.max_function_lines})")
    print(f"sizes: {len(files)} files; largest file {biggest_file[1]} ({biggest_file[0]} lines); "
          f"largest function {biggest_function[1]} ({biggest_function[0]} lines)")
    for o in over:
        print("sizes: worth a look (one idea?):", o)
    return 1 if over and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
