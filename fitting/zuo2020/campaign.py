"""Write the configs of the accuracy campaign: one base model per element and one lever per variant.

    python fitting/zuo2020/campaign.py Si --variants base b10   # write Si_base.toml, Si_b10.toml
    python fitting/zuo2020/run.py --fit Si_d4_b10.toml ...   # fit some; run.py tabulates all

Each variant changes one thing against its base (``VARIANTS``) so that its effect on the
validation errors is measured on its own; ``COMBOS`` then join the levers that paid off.  The
base of every element is order 4, l_max 2, rank 3, 6 Chebyshev functions, r_cut 5 Å, energy and
force weights 3e4 / 1, sweeps to convergence (``tol``, ``patience``: the defaults).  The test split
is reported by every fit; it is never used to choose (``run.py`` chooses on validation).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ELEMENTS = ["Ni", "Cu", "Li", "Mo", "Si", "Ge"]
# Ni and Cu: the mlearn training JSON is not in the data snapshot; its extxyz conversion is read
TRAIN = {el: f'["{el}/training.json.xz"]' for el in ELEMENTS}
TRAIN["Ni"] = '["ACEData_minibenchmarks/ZuoEtAl2020.tar.gz::ZuoEtAl2020/Ni_train.xyz"]'
TRAIN["Cu"] = '["ACEData_minibenchmarks/ZuoEtAl2020.tar.gz::ZuoEtAl2020/Cu_train.xyz"]'

BASE = {"r_cut": 5.0, "r_min": 1.5, "order": 4, "l_max": 2, "rank": 3, "n_basis": 6,
        "sweeps": 8, "ridge": 1e-8, "radial_steps": 0, "lm_steps": 0, "energy": 30000.0, "forces": 1.0, "stress": 0.0,
        "surface_energy": None}
# one lever each, measured against the base on validation
VARIANTS = {
    "base": {},
    "b10": {"n_basis": 10},
    "l3": {"l_max": 3},
    "d5": {"order": 5},
    "e3e3": {"energy": 3000.0},
    "e3e5": {"energy": 300000.0},
    "s1e3": {"stress": 1000.0},
    "rc45": {"r_cut": 4.5},
    "rc55": {"r_cut": 5.5},
    "rc6": {"r_cut": 6.0},
    "rad": {"radial_steps": 1},
    "ridge5": {"ridge": 1e-5},
    # combinations of the levers that paid off
    "l3surf": {"l_max": 3, "surface_energy": 300000.0},
    "l4": {"l_max": 4},
    "l3d5": {"l_max": 3, "order": 5},
    "lm": {"lm_steps": 1},
    "rmin": {"r_min": "data"},
    "b10rmin": {"n_basis": 10, "r_min": "data"},
    "ridge3": {"ridge": 1e-3},
    "l4s1e3": {"l_max": 4, "stress": 1000.0},
    "l4e1e5": {"l_max": 4, "energy": 100000.0},
    # the cutoff that 3-fold cross-validation chose for Ge (Ge_cvrc.toml)
    "l3rc6": {"l_max": 3, "r_cut": 6.0},
    "l4rc6": {"l_max": 4, "r_cut": 6.0},
}


def toml(el, name, p):
    surface = "" if p["surface_energy"] is None else (
        f"[weights.config_types.Surface]         # few configurations, many atoms: their energies\n"
        f"energy = {p['surface_energy']}\n\n")
    if el in ("Ni", "Cu"):  # the extxyz conversion: its own root and force key, no stress
        data = f"""root = "mlearn"                      # under $ETNPOT_DATA or ../shared/data
train = {TRAIN[el]}
forces_key = "force"
validation_fraction = 0.1            # carved from training; the test split is only reported
test = ["data/{el}/test.json.xz"]"""
    else:
        data = f"""root = "mlearn/data"                 # under $ETNPOT_DATA or ../shared/data
train = {TRAIN[el]}
validation_fraction = 0.1            # carved from training; the test split is only reported
test = ["{el}/test.json.xz"]"""
    return f"""# Zuo et al. 2020 {el}, accuracy campaign variant "{name}" (written by campaign.py)
[data]
{data}

[model]
species = ["{el}"]
r_cut = {p['r_cut']}
r_min = {p['r_min']}
order = {p['order']}
l_max = {p['l_max']}
rank = {p['rank']}
n_basis = {p['n_basis']}

[fit]
sweeps = {p['sweeps']}
ridge = {p['ridge']}
radial_steps = {p['radial_steps']}
lm_steps = {p['lm_steps']}
seed = 0

[weights]
energy = {p['energy']}
forces = {p['forces']}
stress = {p['stress']}

{surface}[output]
model = "{el}_{name}.etn"
checkpoint = "{el}_{name}.ckpt"
report = "{el}_{name}.report.json"
"""


# the shortest pair distance in each element's training set, rounded down to 0.05 Å
# (campaign_distances.py measures it); MTP takes its inner radius from the data the same way
R_MIN_DATA = {"Si": 1.80, "Mo": 1.85, "Li": 2.0, "Ge": 2.05}


def write(el, name, overrides):
    p = {**BASE, **overrides}
    if p["r_min"] == "data":
        p["r_min"] = R_MIN_DATA[el]
    path = os.path.join(HERE, f"{el}_{name}.toml")
    with open(path, "w") as f:
        f.write(toml(el, name, p))
    return path


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("element", nargs="+", choices=ELEMENTS)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    for el in args.element:
        for name in args.variants:
            print(write(el, name, VARIANTS[name]))
