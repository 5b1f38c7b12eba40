#!/usr/bin/env bash
# The main job: set up (idempotent), build, then run the whole pipeline embedded on a synthetic dataset.
# Arguments go to `nnunet demo` (e.g. --quick, --work DIR, --workers N). Re-running resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dotnet build src/NnUnet.Cli -c Release --nologo -v q -clp:ErrorsOnly
exec dotnet src/NnUnet.Cli/bin/Release/net10.0/nnunet.dll demo "$@"
