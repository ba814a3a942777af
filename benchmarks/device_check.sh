#!/usr/bin/env bash
# The device check on a lent GPU host, as the device tool's one command:
#   here, once:  .venv/bin/python -m benchmarks.device_prepare     (writes .whl/ and .device_data/)
#   there:       run(command="bash benchmarks/device_check.sh", carry=[".whl", ".device_data"], timeout_s=590)
# Installs the carried wheels (the host has no network), then runs benchmarks.device_check;
# its report comes back as $OUT/check.md. Extra arguments go to device_check.py (e.g. a second
# call with --parts compiled --budget 540 gives torch.compile all of its time).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
python3 -m benchmarks.device_check --out "${OUT:-device_check}" "$@"
