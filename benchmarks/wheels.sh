#!/usr/bin/env bash
# Makes the wheel folder .whl/ that benchmarks/accelerator.sh installs from on a GPU machine
# with no network. Run once on a machine with network (PyPI), from anywhere:
#   bash benchmarks/wheels.sh            # → <repo>/.whl/*.whl (git-ignored), about 10 MB
# Wheels are for CPython 3.12 on x86-64 Linux (the device image's Python); packages published
# only as source (promise) are built into a pure-Python wheel here.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${WHEEL_DIR:-.whl}
PY_VERSION=${WHEEL_PYTHON_VERSION:-3.12}
mkdir -p "$DEST"
EXCLUDE="$(git rev-parse --git-common-dir)/info/exclude"  # Shared by every worktree.
grep -qx '/.whl/' "$EXCLUDE" 2>/dev/null || echo '/.whl/' >> "$EXCLUDE"
mapfile -t packages < <(grep -v '^\s*#' benchmarks/wheels.txt | grep -v '^\s*$')
binary=() sdist=()
for p in "${packages[@]}"; do
  case "$p" in promise==*) sdist+=("$p") ;; *) binary+=("$p") ;; esac
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${binary[@]}"
if [ ${#sdist[@]} -gt 0 ]; then
  python3 -m pip wheel -q --no-deps -w "$DEST" "${sdist[@]}"
fi
ls -l "$DEST"
du -sh "$DEST"
