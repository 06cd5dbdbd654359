#!/usr/bin/env bash
# Prints the commands of the README's "Two commands" block, one a line: the non-comment lines of
# the first ```sh block after the "## Two commands" heading. CI runs exactly these, so the README
# cannot drift from what works.
set -euo pipefail
readme="${1:-README.md}"
awk '
  /^## Two commands/ { in_section = 1; next }
  in_section && /^## / { exit }
  in_section && /^```sh/ { in_block = 1; next }
  in_block && /^```/ { exit }
  in_block && !/^[[:space:]]*(#|$)/ { print }
' "$readme"
