#!/bin/sh
# Creates the Python environment the ETL fixture scripts use: the independent parser
# dissect.etl (and dissect.util, whose lzxpress decoder checks compressed buffers).
# Usage: tests/etl/setup_venv.sh [VENV_DIR]   (default: tests/etl/.venv-etl)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-"$here/.venv-etl"}
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    dissect.etl==3.14 dissect.util==3.24 dissect.cstruct==4.7 defusedxml==0.7.1
"$venv/bin/python" -c "import dissect.etl, dissect.util; print('dissect.etl ready in $venv')"
