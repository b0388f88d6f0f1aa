"""Transport on segmented volumes: tortuosity factor, effective conductivity, Stokes flow,
electrolyte wetting.

Solvers run in torch (CUDA when available, else CPU) on the whole volume in memory;
:func:`sweep` distributes many independent solves over a dask cluster.
"""

from .diffusion import (ConductivityResult, TortuosityResult, effective_conductivity,
                        tortuosity_factor)
from .flow import FlowResult, flow_tortuosity, permeability
from .sweeps import sweep
from .infiltration import WettingResult, wetting

__all__ = ["tortuosity_factor", "effective_conductivity", "permeability", "flow_tortuosity",
           "wetting", "sweep", "TortuosityResult", "ConductivityResult", "FlowResult",
           "WettingResult"]
