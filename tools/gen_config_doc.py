#!/usr/bin/env python3
"""Writes docs/configuration.md from `rtcd --print-config` (the directive table in
src/base/config.c is the source; run this after adding a key):
    python3 tools/gen_config_doc.py build/rtcd > docs/configuration.md
tests/app/config_doc_test.sh fails when the two disagree."""
import subprocess, sys

out = subprocess.run([sys.argv[1], "--print-config"], capture_output=True, text=True,
                     check=True).stdout
print("# Configuration reference\n")
print("rtcd reads one INI file (`rtcd -c FILE`); every key has a default, so no file is needed")
print("for a first run. `--set SECTION.KEY=VALUE` overrides any key after the file. `rtcd --check`")
print("validates and exits (0 valid; 2 with `file:line: section.key: 'value': what is wrong`).")
print("`rtcd --print-config` prints the effective configuration in this form. Sizes take a K, M or")
print("G suffix; lists are comma-separated; addresses are IP literals (IPv6 in brackets).\n")
print("This page is generated from the directive table by `tools/gen_config_doc.py`.\n")
section = None
help_text = None
for line in out.splitlines():
    if line.startswith("[") and line.endswith("]"):
        section = line[1:-1]
        print(f"\n## [{section}]\n")
        print("| key | default | meaning |")
        print("|---|---|---|")
    elif line.startswith("; "):
        help_text = line[2:]
    elif " = " in line or line.endswith(" ="):
        key, _, val = line.partition(" =")
        val = val.strip()
        print(f"| `{section}.{key}` | `{val}` | {help_text} |" if val else
              f"| `{section}.{key}` | (empty) | {help_text} |")
