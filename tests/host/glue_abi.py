#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check that rust/glue.rs declares the C glue exactly as rust/glue.h does.

The module's Rust code never reads a C struct: every field access is in
rust/glue.c, compiled with the target kernel's headers. What is left of
"layout" is the function interface between the two languages, which the
compilers cannot check across the boundary (a Rust `extern "C"` block is
taken on trust). This script turns each C prototype and each Rust
declaration into one canonical Rust-like signature and compares them by
name, both ways:

  - glue.h prototypes against glue.rs's `extern "C"` block;
  - glue.h's Rust-implemented functions against procfs.rs's `#[no_mangle]`
    definitions;
  - glue.h's function-pointer typedefs against glue.rs's type aliases.

A C type outside the table below is an error, so a new type needs a
deliberate entry. Usage: glue_abi.py GLUE_H GLUE_RS PROCFS_RS.
Prints one line per mismatch and exits 1 if there is any.
"""

import re
import sys

# C base types and their Rust spelling (core::ffi names, as glue.rs uses).
C_BASE = {
    "void": "c_void",
    "char": "c_char",
    "int": "c_int",
    "unsigned int": "c_uint",
    "long": "c_long",
    "unsigned long": "c_ulong",
    "bool": "bool",
    "u8": "u8",
    "u64": "u64",
    "size_t": "usize",
    "umode_t": "u16",  # unsigned short on every architecture
    "struct ftrace_ops": "FtraceOps",
    "struct ftrace_regs": "FtraceRegs",
    "struct cowstat_kretprobe": "Kretprobe",
    "struct proc_dir_entry": "ProcDirEntry",
    "struct seq_file": "SeqFile",
    "cowstat_entry_fn": "EntryFunc",
    "cowstat_ret_fn": "RetFunc",
}
# glue.h typedef name -> glue.rs alias name.
TYPEDEFS = {"cowstat_entry_fn": "EntryFunc", "cowstat_ret_fn": "RetFunc"}


class AbiError(Exception):
    pass


def c_type(text, where):
    """Canonical Rust spelling of a C type such as 'const char *const *'."""
    tokens = re.findall(r"\*|\w+", text)
    stars = tokens.index("*") if "*" in tokens else len(tokens)
    base_tokens = tokens[:stars]
    const = "const" in base_tokens
    base = " ".join(t for t in base_tokens if t != "const")
    if base not in C_BASE:
        raise AbiError(f"{where}: C type '{base}' is not in glue_abi.py's table")
    rust = C_BASE[base]
    rest = tokens[stars:]
    i = 0
    while i < len(rest):
        if rest[i] != "*":
            raise AbiError(f"{where}: cannot read C type '{text}'")
        rust = ("*const " if const else "*mut ") + rust
        const = i + 1 < len(rest) and rest[i + 1] == "const"
        i += 2 if const else 1
    return rust


def c_param(text, where):
    """A C parameter ('const u8 *data', 'u64 comm[2]') as a canonical type."""
    text = text.strip()
    array = re.fullmatch(r"(.*?)\s*(\w+)\s*\[\s*(\d+)\s*\]", text)
    if array:
        return f"*mut [{c_type(array.group(1), where)}; {array.group(3)}]"
    named = re.fullmatch(r"(.*?[\s*])(\w+)", text)
    if not named or named.group(1).strip() in ("", "const", "struct"):
        raise AbiError(f"{where}: parameter '{text}' has no name")
    return c_type(named.group(1), where)


def c_params(text, where):
    text = text.strip()
    if text in ("", "void"):
        return []
    return [c_param(p, where) for p in text.split(",")]


def signature(params, ret):
    return f"fn({', '.join(params)})" + (f" -> {ret}" if ret else "")


def parse_glue_h(text):
    """Prototypes and function-pointer typedefs of glue.h, canonical."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    protos, typedefs = {}, {}
    for decl in text.split(";"):
        decl = " ".join(decl.split())
        if not decl or re.fullmatch(r"struct \w+", decl):
            continue
        td = re.fullmatch(r"typedef (.+?)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)", decl)
        if td:
            ret = c_type(td.group(1), td.group(2))
            typedefs[td.group(2)] = signature(
                c_params(td.group(3), td.group(2)), None if ret == "c_void" else ret)
            continue
        fn = re.fullmatch(r"(.+?)\b(cowstat_\w+)\s*\((.*)\)", decl)
        if not fn:
            raise AbiError(f"glue.h: cannot read the declaration '{decl}'")
        name = fn.group(2)
        ret = c_type(fn.group(1), name)
        protos[name] = signature(c_params(fn.group(3), name), None if ret == "c_void" else ret)
    return protos, typedefs


def rust_type(text):
    text = " ".join(text.split())
    text = re.sub(r"\b(?:glue|core::ffi|crate::glue)::", "", text)
    return re.sub(r"\s*;\s*", "; ", text)


def rust_params(text):
    text = text.strip().rstrip(",")
    if not text:
        return []
    out = []
    for p in re.split(r",(?![^\[]*\])", text):
        name, _, ty = p.partition(":")
        out.append(rust_type(ty))
    return out


RUST_FN = r"fn\s+(\w+)\s*\(([^)]*)\)\s*(?:->\s*([^;{]+?))?\s*"


def parse_glue_rs(text):
    """The extern block's declarations and the fn-pointer aliases."""
    block = re.search(r'extern "C" \{(.*?)\n\}', text, flags=re.S)
    if not block:
        raise AbiError('glue.rs: no extern "C" block')
    decls = {m.group(1): signature(rust_params(m.group(2)), m.group(3) and rust_type(m.group(3)))
             for m in re.finditer(RUST_FN + ";", block.group(1))}
    aliases = {}
    for m in re.finditer(r"type\s+(\w+)\s*=\s*(?:unsafe\s+)?extern \"C\"\s+"
                         r"fn\s*\(([^)]*)\)\s*(?:->\s*([^;]+?))?\s*;", text):
        aliases[m.group(1)] = signature(rust_params(m.group(2)), m.group(3) and rust_type(m.group(3)))
    return decls, aliases


def parse_exports_rs(text):
    """`#[no_mangle]` extern "C" definitions (Rust functions C calls)."""
    return {m.group(1): signature(rust_params(m.group(2)), m.group(3) and rust_type(m.group(3)))
            for m in re.finditer(r"#\[no_mangle\]\s*(?:pub\s+)?(?:unsafe\s+)?extern \"C\"\s+"
                                 + RUST_FN + r"\{", text)}


def compare(what, c, rust, problems):
    for name in sorted(set(c) | set(rust)):
        if name not in rust:
            problems.append(f"{name}: in glue.h, not in {what}")
        elif name not in c:
            problems.append(f"{name}: in {what}, not in glue.h")
        elif c[name] != rust[name]:
            problems.append(f"{name}: glue.h has {c[name]}, {what} has {rust[name]}")


def main(argv):
    if len(argv) != 4:
        print("usage: glue_abi.py GLUE_H GLUE_RS PROCFS_RS", file=sys.stderr)
        return 2
    try:
        protos, typedefs = parse_glue_h(open(argv[1]).read())
        decls, aliases = parse_glue_rs(open(argv[2]).read())
        exports = parse_exports_rs(open(argv[3]).read())
    except (AbiError, OSError) as e:
        print(f"glue_abi: {e}", file=sys.stderr)
        return 2
    problems = []
    from_rust = {n: s for n, s in protos.items() if n.startswith("cowstat_rs_")}
    to_c = {n: s for n, s in protos.items() if n not in from_rust}
    compare("glue.rs", to_c, decls, problems)
    compare("procfs.rs's #[no_mangle] functions", from_rust, exports, problems)
    compare("glue.rs's type aliases",
            {TYPEDEFS.get(n, n): s for n, s in typedefs.items()}, aliases, problems)
    for p in problems:
        print(p)
    print(f"{len(protos)} functions and {len(typedefs)} function-pointer types compared, "
          f"{len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
