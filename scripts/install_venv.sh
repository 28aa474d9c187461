#!/usr/bin/env bash
# Create a virtual environment and install pinned requirements into it, showing one progress line
# (packages collected, seconds) instead of pip's output, which goes to <venv>/install.log and is
# printed only when the install fails.
# Usage: scripts/install_venv.sh PYTHON VENV REQUIREMENTS "what is installed, for the reader"
set -uo pipefail
python=$1 venv=$2 requirements=$3 what=$4
start=$SECONDS
echo "==> $venv: installing $what from $requirements"
"$python" -m venv "$venv" || exit 1
log="$venv/install.log"
{
  "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r "$requirements"
} >"$log" 2>&1 &
pip=$!
progress() { printf '    %d packages collected, %d s' "$(grep -c '^Collecting' "$log")" $((SECONDS - start)); }
while kill -0 "$pip" 2>/dev/null; do
  if [ -t 1 ]; then printf '\r'; progress; sleep 1; else sleep 15; kill -0 "$pip" 2>/dev/null && progress && echo; fi
done
wait "$pip"
status=$?
[ -t 1 ] && printf '\r\033[K'
if [ "$status" -ne 0 ]; then
  echo "    pip failed after $((SECONDS - start)) s; the end of $log:" >&2
  tail -n 40 "$log" >&2
  exit "$status"
fi
echo "    done in $((SECONDS - start)) s ($(grep -c "^Collecting" "$log") requirements resolved; pip's log: $log)"
