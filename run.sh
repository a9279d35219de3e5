#!/usr/bin/env bash
# The main job: set up, create the embedded SQLite database, load the bundled dataset, serve the UI.
#   ./run.sh                 serves http://localhost:8501
#   MATDB_URL=... ./run.sh   uses another database (e.g. postgresql+psycopg://user@host/db)
#   PORT=8600 ./run.sh       another port
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
export MATDB_URL="${MATDB_URL:-sqlite:///$PWD/var/matdb.sqlite}"
mkdir -p var
.venv/bin/matdb init --bundled
.venv/bin/matdb info
exec .venv/bin/streamlit run app.py --server.headless true --server.port "${PORT:-8501}" \
  --browser.gatherUsageStats false
