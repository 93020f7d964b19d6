"""Training rows per fitted (tensor-train) parameter of the chosen Zuo models: the scale that
``etnpot.defaults.MIN_ROWS_PER_PARAMETER`` (5) and ``[fit] size_to_data`` compare against.

    ETNPOT_DATA=../shared/data python fitting/sizing/zuo_rows.py

Rows as the fit counts them (:func:`etnpot.sizing.training_rows`, default weights: energies and
force components) on each config's training split (validation carved out).
"""
import os

import etnpot
from etnpot.config import load_config
from etnpot.objective import Weights
from etnpot.sizing import training_rows
from etnpot.workflow import read_splits

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "zuo2020")
# fitting/zuo2020/results.md; the same shapes and training data as Mo_l4, Si_l3 and Ge_l4 before
# them, so the same rows per parameter
CHOSEN = ["Ni_l4", "Cu_d3_r3", "Li_l3", "Mo_l4e1e5", "Si_l3rc6", "Ge_l4rc6"]

if __name__ == "__main__":
    for name in CHOSEN:
        train = read_splits(load_config(os.path.join(HERE, name + ".toml")))[0]
        pot = etnpot.load(os.path.join(HERE, name + ".etn"))
        rows = training_rows(train, Weights())
        print(f"{name:10s} {rows:7d} rows  {pot.tt.num_parameters:5d} fitted parameters  "
              f"{rows / pot.tt.num_parameters:6.1f} rows per fitted parameter")
