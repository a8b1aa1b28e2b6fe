#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks that every tracked C++ file (but generated ones) is formatted as .clang-format says (clang-format 14,
# Google style, 100 columns). Changes nothing. Exit 0: all formatted; 1: some files are not
# (listed, with clang-format's first complaints); 2: clang-format 14 is missing.
#   ./scripts/check-format.sh           check
#   ./scripts/check-format.sh --fix     reformat the files in place instead
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fix=0
case ${1:-} in
  --fix) fix=1 ;;
  "") ;;
  *) echo "usage: $0 [--fix]" >&2; exit 2 ;;
esac

clang_format=
for c in clang-format-14 clang-format; do
  if command -v "$c" >/dev/null && "$c" --version | grep -q 'version 14\.'; then
    clang_format=$c
    break
  fi
done
[ -n "$clang_format" ] || { echo "check-format: clang-format 14 not found (apt-get install clang-format-14)" >&2; exit 2; }

# Generated files (an "@generated" banner in their first lines) are left as their generator
# writes them.
files=()
while IFS= read -r f; do
  head -n 3 "$f" | grep -q '@generated' || files+=("$f")
done < <(git ls-files -- '*.hpp' '*.cpp' '*.h' '*.cc')
if [ $fix = 1 ]; then
  "$clang_format" -i --style=file "${files[@]}"
  echo "check-format: reformatted ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! out=$("$clang_format" --dry-run -Werror --style=file "$f" 2>&1); then
    bad+=("$f")
    printf '%s\n' "$out" | head -n 6 >&2
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files are not formatted as .clang-format says:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "check-format: run ./scripts/check-format.sh --fix and commit the result" >&2
  exit 1
fi
echo "check-format: all ${#files[@]} C++ files formatted"
