#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Checks that Documentation/architecture.rst's table "Which part may use which" matches the
Cargo manifests: every crate of the workspace (and tce-init's own workspace) has a row, the
row names exactly the crates of this tree it depends on, and nothing under rust/ depends on
tools/ or samples/. Run by `make lint`; prints each disagreement and exits 1 if there is one.
"""

import json
import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(TOP, "Documentation", "architecture.rst")
# What the table's "the six libraries" stands for.
LIBRARIES = {"tce_engine", "tce_ddw_model", "tce_uapi", "tce_sys", "tce_model", "tce_shim"}


def packages(manifest_dir):
    """(relative directory, name, {path dependency: its relative directory}) of each package
    of the workspace in `manifest_dir`."""
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=manifest_dir, check=True, capture_output=True, text=True).stdout
    for p in json.loads(out)["packages"]:
        rel = os.path.relpath(os.path.dirname(p["manifest_path"]), TOP)
        deps = {d["name"]: os.path.relpath(d["path"], TOP)
                for d in p["dependencies"] if d.get("path")}
        yield rel, p["name"], deps


def table_rows():
    """The rows of the table: {first column: second column}, continuation lines joined."""
    text = open(DOC, encoding="utf-8").read()
    section = text.split("Which part may use which", 1)[1].split("\n\n", 2)[1]
    rows, key = {}, None
    for line in section.splitlines():
        if line.startswith("=") or line.startswith("part "):
            continue
        first, rest = line[:28].strip(), line[28:].strip()
        if first:
            key = first.strip("`")
            rows[key] = rest
        elif key:
            rows[key] += " " + rest
    return rows


def named(text):
    """The crates a row's second column names."""
    names = set()
    if "the six libraries" in text:
        names |= LIBRARIES
    for lit in re.findall(r"``([^`]+)``", text):
        if lit == "samples/tce_vmm":
            names.add("tce-vmm")
        elif re.fullmatch(r"tce_[a-z_]+", lit):
            names.add(lit)
    return names


def main():
    rows = table_rows()
    problems = []
    pkgs = list(packages(TOP)) + list(packages(os.path.join(TOP, "tools/testing/tce-init")))
    for rel, name, deps in pkgs:
        if rel.startswith("rust/"):
            for dep, where in deps.items():
                if where.startswith(("tools/", "samples/")):
                    problems.append(f"{rel} depends on {dep} ({where})")
        key = next((k for k in (rel, name) if k in rows), None)
        if key is None:
            problems.append(f"{rel} ({name}) has no row in the table")
            continue
        want = named(rows[key])
        if set(deps) != want:
            problems.append(f"{rel}: the table says {sorted(want)}, Cargo.toml has {sorted(deps)}")
    for p in problems:
        print(f"check-architecture: {p}")
    if not problems:
        print(f"check-architecture: {len(pkgs)} crates match Documentation/architecture.rst")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
