#!/usr/bin/env bash
# Build a pure-Python detectron2 wheel from the repackaged `sal-detectron2` build.
#
# Why: detectron2 is not published on PyPI under its own name. `sal-detectron2==0.7.2`
# is a repackaged detectron2 (2024-11) shipped only as a cp310 wheel. Its Python
# package runs on any CPython >= 3.10 once the compiled `detectron2/_C*.so` (built
# for cp310) is removed: detectron2 then uses pycocotools for COCO evaluation and
# only loses deformable conv and rotated-box ops, which no DETR here uses.
#
# Usage: build_detectron2_wheel.sh PYTHON OUT_DIR   -> prints the wheel path
set -euo pipefail
PY="$1"; OUT="$2"
VERSION=0.7.2
SHA256=491af0c7f79bdb2d178e46f6cb16a97c4ac968d45c41ea3f6b6435d59bbee561
mkdir -p "$OUT"
existing=$(ls "$OUT"/sal_detectron2-$VERSION-py3-none-any.whl 2>/dev/null || true)
if [ -n "$existing" ]; then echo "$existing"; exit 0; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.10 \
    -d "$work/dl" "sal-detectron2==$VERSION" >&2
whl=$(ls "$work"/dl/*.whl)
got=$(sha256sum "$whl" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
    echo "build_detectron2_wheel: sha256 mismatch for $whl: got $got, expected $SHA256" >&2
    exit 1
fi
"$PY" -m wheel unpack -d "$work/unpacked" "$whl" >&2
root=$(ls -d "$work"/unpacked/*/)
find "$root" -name '_C*.so' -delete
sed -i 's/^Tag: .*/Tag: py3-none-any/' "$root"/*.dist-info/WHEEL
"$PY" -m wheel pack -d "$OUT" "$root" >&2
ls "$OUT"/sal_detectron2-$VERSION-py3-none-any.whl
