#!/usr/bin/env bash
# Scan every locked dependency (runtime and dev, from uv.lock) for known vulnerabilities with
# pip-audit, against PyPI's advisory data (the per-version JSON API).
#
#   scripts/audit.sh                         audit the lock
#   scripts/audit.sh --ignore-vuln GHSA-...  accept one advisory (say why where you call it)
#
# Exit status: 0 every package audited, no known vulnerability; 1 a vulnerability was found;
# 2 a package could not be audited (its advisory data was not reachable). A network that
# cannot reach the advisory data at all (no package audited) is reported as such and exits 2,
# or 0 with AUDIT_ALLOW_UNREACHABLE=1 (for a CI runner without that access: it still fails on
# every vulnerability it can see).
#
# The exact pins of the lock are audited as they are (no resolution, no pip, nothing
# installed); pip-audit itself runs pinned, in a throwaway environment of `uv tool run`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UV_PYTHON_DOWNLOADS=never

PIP_AUDIT_VERSION=2.10.1
UV=$(command -v uv >/dev/null 2>&1 && echo uv || echo "python3 -m uv")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# every third-party package of the lock, pinned; the workspace's own packages are not on PyPI
$UV export --frozen --all-groups --no-emit-workspace --no-hashes --no-header \
  --no-annotate --format requirements-txt --output-file "$work/requirements.txt" >/dev/null

status=0
$UV tool run --from "pip-audit==${PIP_AUDIT_VERSION}" pip-audit \
  --requirement "$work/requirements.txt" \
  --no-deps \
  --disable-pip \
  --vulnerability-service pypi \
  --progress-spinner off \
  --format json \
  --output "$work/report.json" \
  "$@" 2>"$work/stderr" || status=$?

if [[ ! -s "$work/report.json" ]]; then
  cat "$work/stderr" >&2
  echo "audit: pip-audit failed (exit $status) without a report" >&2
  exit 2
fi

python3 - "$work/report.json" <<'EOF'
import json
import os
import sys

report = json.load(open(sys.argv[1]))
packages = report["dependencies"]
skipped = [p for p in packages if "skip_reason" in p]
audited = [p for p in packages if "skip_reason" not in p]
vulnerable = [p for p in audited if p["vulns"]]
for package in vulnerable:
    for vuln in package["vulns"]:
        fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"VULNERABLE {package['name']}=={package['version']}: {vuln['id']} (fixed in {fixed})")
print(f"audit: {len(audited)} of {len(packages)} locked packages audited, "
      f"{len(vulnerable)} with known vulnerabilities", file=sys.stderr)
if vulnerable:
    sys.exit(1)
if skipped and not audited:
    print("audit: the advisory data is not reachable from here: nothing could be audited "
          f"(first reason: {skipped[0]['skip_reason']})", file=sys.stderr)
    sys.exit(0 if os.environ.get("AUDIT_ALLOW_UNREACHABLE") == "1" else 2)
if skipped:
    for package in skipped:
        print(f"NOT AUDITED {package['name']}: {package['skip_reason']}", file=sys.stderr)
    sys.exit(2)
EOF
