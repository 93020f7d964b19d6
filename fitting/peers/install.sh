#!/bin/bash
# Create one virtual environment per peer code under $PEERS (default: ./.peers, ignored by git).
# They are benchmark tools, not etnpot dependencies, and their versions are pinned so that the
# recorded numbers can be reproduced: motep 0.2.0 (MTP; C extension engine), python-ace
# 0.4.0rc1 (linear ACE; academic licence, run only), quippy-ase 0.10.3 (GAP; wheel ships gap_fit).
set -euo pipefail
PEERS=${PEERS:-$(pwd)/.peers}
mkdir -p "$PEERS"
python3 -m venv "$PEERS/motep" && "$PEERS/motep/bin/pip" install -q motep==0.2.0
python3 -m venv "$PEERS/ace" && "$PEERS/ace/bin/pip" install -q python-ace==0.4.0rc1
python3 -m venv "$PEERS/gap" && "$PEERS/gap/bin/pip" install -q quippy-ase==0.10.3 ase
echo "peer environments in $PEERS: motep, ace, gap"
echo "MTP also needs untrained level files (MLIP-2's untrained_mtps/10.mtp, 16.mtp) in \$PEERS/levels"
