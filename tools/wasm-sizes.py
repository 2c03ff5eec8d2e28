#!/usr/bin/env python3
"""Where the bytes of a wasm file go, by crate and by function (a small `twiggy top`).

Reads the code section and the `name` section of a wasm built with symbol names (cargo's
output before wasm-bindgen, e.g. target/wasm32-unknown-unknown/wasm-release/chronoscope-web.wasm)
and prints the section sizes, then code bytes per crate (from the demangled path) and the
largest functions. Only the standard library: runs wherever Python 3 does.

    python3 tools/wasm-sizes.py FILE.wasm [--top N] [--grep TEXT]
"""

import argparse
import re
import sys
from collections import defaultdict


def leb(data, i):
    """Unsigned LEB128 at data[i]: (value, next index)."""
    result, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def demangle(name):
    """Enough of Rust's legacy mangling (`_ZN3foo3bar17h…E`) to read paths."""
    m = re.match(r"^_?_ZN(.*)E$", name)
    if not m:
        return name
    s, parts, i = m.group(1), [], 0
    while i < len(s) and s[i].isdigit():
        j = i
        while s[j].isdigit():
            j += 1
        n = int(s[i:j])
        parts.append(s[j : j + n])
        i = j + n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    out = "::".join(parts)
    for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"), ("$C$", ","),
                 ("$u7b$", "{"), ("$u7d$", "}"), ("$BP$", "*"), ("..", "::"), ("$u27$", "'"),
                 ("$u5b$", "["), ("$u5d$", "]"), ("$u3b$", ";"), ("$LP$", "("), ("$RP$", ")")):
        out = out.replace(a, b)
    return out


def crate_of(path):
    """The crate a path belongs to: its first `name::` segment (for `<T as Trait>` impls the
    type's crate, for generics the outer function's). Names in Rust's v0 mangling (`_R…`) are
    read only for their first crate (`Cs…_4core`)."""
    if path.startswith("_R"):
        m = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)", path)
        if m:
            n = int(m.group(1))
            return path[m.end() : m.end() + n]
        return path
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", path)
    return m.group(1) if m else path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wasm")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--grep", help="list only functions whose name contains this")
    args = ap.parse_args()
    data = open(args.wasm, "rb").read()
    assert data[:4] == b"\0asm", "not a wasm file"
    i, sections, imports, bodies, names = 8, [], 0, [], {}
    while i < len(data):
        sid = data[i]
        size, j = leb(data, i + 1)
        end = j + size
        label = str(sid)
        if sid == 0:
            nlen, k = leb(data, j)
            label = "custom:" + data[k : k + nlen].decode(errors="replace")
            if label == "custom:name":
                k += nlen
                while k < end:
                    sub, k = leb(data, k)
                    slen, k = leb(data, k)
                    if sub == 1:
                        count, q = leb(data, k)
                        for _ in range(count):
                            idx, q = leb(data, q)
                            ln, q = leb(data, q)
                            names[idx] = data[q : q + ln].decode(errors="replace")
                            q += ln
                    k += slen
        elif sid == 2:
            count, k = leb(data, j)
            for _ in range(count):
                ln, k = leb(data, k)
                k += ln
                ln, k = leb(data, k)
                k += ln
                kind = data[k]
                k += 1
                if kind == 0:
                    imports += 1
                    _, k = leb(data, k)
                elif kind == 1:
                    k += 1
                    flags, k = leb(data, k)
                    _, k = leb(data, k)
                    if flags & 1:
                        _, k = leb(data, k)
                elif kind == 2:
                    flags, k = leb(data, k)
                    _, k = leb(data, k)
                    if flags & 1:
                        _, k = leb(data, k)
                elif kind == 3:
                    k += 2
        elif sid == 10:
            count, k = leb(data, j)
            for _ in range(count):
                bsize, k2 = leb(data, k)
                bodies.append(k2 - k + bsize)
                k = k2 + bsize
        sections.append((label, end - i))
        i = end

    total = len(data)
    print(f"{args.wasm}: {total} bytes")
    for label, size in sorted(sections, key=lambda s: -s[1]):
        print(f"  section {label:<28} {size:>9}  {100 * size / total:5.1f}%")
    if not names:
        print("no name section: build without stripping (cargo's output, before wasm-bindgen)")
        return
    by_crate, funcs = defaultdict(int), []
    for n, size in enumerate(bodies):
        path = demangle(names.get(imports + n, f"func{imports + n}"))
        by_crate[crate_of(path)] += size
        funcs.append((size, path))
    code = sum(bodies)
    print(f"\ncode bytes by crate ({code} in {len(bodies)} functions):")
    for c, size in sorted(by_crate.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {c:<40} {size:>9}  {100 * size / code:5.1f}%")
    print(f"\nlargest functions:")
    shown = [f for f in funcs if not args.grep or args.grep in f[1]]
    for size, path in sorted(shown, key=lambda f: -f[0])[: args.top]:
        print(f"  {size:>8}  {path[:150]}")
    if args.grep:
        print(f"  ({len(shown)} functions, {sum(s for s, _ in shown)} bytes match {args.grep!r})")


if __name__ == "__main__":
    sys.exit(main())
