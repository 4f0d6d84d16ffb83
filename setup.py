"""Install sgdsim; `solvers/` ships as `sgdsim.solvers` and `scenarios/` as `sgdsim.scenarios`."""
from pathlib import Path

from setuptools import setup

FOLDERS = {"sgdsim": "sgdsim", "sgdsim.solvers": "solvers", "sgdsim.scenarios": "scenarios"}


def packages() -> list[str]:
    """Every folder with an __init__.py under the three installed folders, as its installed dotted name."""
    found = []
    for package, folder in FOLDERS.items():
        for init in sorted(Path(folder).rglob("__init__.py")):
            found.append(".".join((package, *init.parent.relative_to(folder).parts)))
    return found


setup(
    name="sgdsim",
    version="0.1.0",
    description="Numerical simulation engine for the dynamics of stochastic gradient descent",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=packages(),
    package_dir=FOLDERS,
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "numba>=0.58",
        "h5py>=3.8",
        "matplotlib>=3.6",
        "tqdm>=4.60",
    ],
    extras_require={
        "xarray": ["xarray>=2023.1", "h5netcdf>=1.1"],   # read run-file elements as labelled datasets
        "cluster": ["dask[distributed]>=2023.1", "dask-jobqueue>=0.8"],   # sgdsim sweep --engine dask
        "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6", "xarray>=2023.1", "h5netcdf>=1.1",
                 "dask[distributed]>=2023.1", "dask-jobqueue>=0.8"],
    },
    entry_points={
        "console_scripts": ["sgdsim = sgdsim.cli:main"],
        "sgdsim.scenarios": [
            "committee-machine = sgdsim.scenarios.committee_machine:SCENARIO",
            "deep-linear-acceleration = sgdsim.scenarios.deep_linear_acceleration:SCENARIO",
            "double-well = sgdsim.scenarios.double_well:SCENARIO",
            "generalization-dynamics = sgdsim.scenarios.generalization_dynamics:SCENARIO",
            "kramers = sgdsim.scenarios.kramers:SCENARIO",
            "large-lr = sgdsim.scenarios.large_lr:SCENARIO",
            "limit-cycle = sgdsim.scenarios.limit_cycle:SCENARIO",
            "mode-connectivity = sgdsim.scenarios.mode_connectivity:SCENARIO",
            "modified-equation = sgdsim.scenarios.modified_equation:SCENARIO",
            "noise-stability = sgdsim.scenarios.noise_stability:SCENARIO",
            "overparameterization = sgdsim.scenarios.overparameterization:SCENARIO",
            "pspin-descent = sgdsim.scenarios.pspin_descent:SCENARIO",
            "pspin-landscape = sgdsim.scenarios.pspin_landscape:SCENARIO",
            "risk-curves = sgdsim.scenarios.risk_curves:SCENARIO",
            "saddle-escape = sgdsim.scenarios.saddle_escape:SCENARIO",
            "saxe-modes = sgdsim.scenarios.saxe_modes:SCENARIO",
            "smoothing = sgdsim.scenarios.smoothing:SCENARIO",
            "temperature = sgdsim.scenarios.temperature:SCENARIO",
        ],
        "sgdsim.theories": [
            "deep-linear = sgdsim.scenarios.saxe_modes_theories:DEEP_LINEAR",
            "fokker-planck = sgdsim.scenarios.double_well_theories:FOKKER_PLANCK",
            "gibbs = sgdsim.scenarios.double_well_theories:GIBBS",
            "stored = sgdsim.compare.registry:STORED",
        ],
    },
)
