"""Shared by the peer drivers (each runs in its own virtual environment, with numpy and ASE only)."""
import numpy as np


def test_errors(images, make_calc):
    """Per-atom energy (meV/atom) and force-component (eV/Å) MAE and RMSE of a calculator on
    reference ``images``; ``make_calc()`` is called per configuration (motep's calculator keeps
    the neighbour list of the first system it sees, so it needs a fresh one each time)."""
    de, df = [], []
    for atoms in images:
        ref_e, ref_f = atoms.get_potential_energy(), atoms.get_forces()
        a = atoms.copy()
        a.calc = make_calc()
        de.append((a.get_potential_energy() - ref_e) / len(a))
        df.append((a.get_forces() - ref_f).ravel())
    de, df = np.array(de), np.concatenate(df)
    return {"energy_mae_mev": 1e3 * np.abs(de).mean(), "energy_rmse_mev": 1e3 * np.sqrt((de**2).mean()),
            "forces_mae": np.abs(df).mean(), "forces_rmse": np.sqrt((df**2).mean())}
