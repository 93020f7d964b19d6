"""CPU time per atom of the Gauss-Newton rows of a radial step (``feature_linear_map``) against
the rows of a middle core (``core_linear_map``), on random fcc alloy cells (EMT geometry, 320
atoms) for one, two and four species, species-resolved channels and the rank-2 embedding.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_radial.py

This is why radial steps are off by default and skipped above ``max_radial_params``
(etnpot/defaults.py): with four species-resolved species a radial step's rows cost about 100
times a core's.
"""
import sys
import time
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import etnpot
from etnpot.linearization import feature_linear_map, core_linear_map
from make_alloy_set import alloy_cells
from etnpot.memory import keep_freed_memory
keep_freed_memory()
cells = alloy_cells(320, ["Cu", "Ag", "Au", "Ni"], seed=0)
for sp, kw in ((["Cu","Ag","Au","Ni"], {}), (["Cu","Ag","Au","Ni"], dict(n_channels=6, species_rank=2)), (["Cu","Ag"], {}), (["Cu"], {})):
    cs = cells if len(sp) == 4 else [c for c in alloy_cells(320, sp, seed=0)]
    for l_max in (1, 2):
        pot = etnpot.ETNPotential.random(sp, r_cut=5.0, r_min=1.5, order=3, l_max=l_max, rank=3, **kw)
        g = pot.graph(cs)
        t = time.process_time(); feature_linear_map(pot, g); tf = time.process_time() - t
        t = time.process_time(); core_linear_map(pot, 1, g); tc = time.process_time() - t
        print(len(sp), kw, "l_max", l_max, "feature params", pot.feature_parameter_vector().size,
              f"radial rows {tf / g.n_atoms * 1e3:.2f} ms/atom, middle core rows {tc / g.n_atoms * 1e3:.2f} ms/atom", flush=True)
