"""Install sgdsim; `solvers/` ships as `sgdsim.solvers` and `scenarios/` as `sgdsim.scenarios`."""
from setuptools import setup

setup(
    name="sgdsim",
    version="0.1.0",
    description="Numerical simulation engine for the dynamics of stochastic gradient descent",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["sgdsim", "sgdsim.solvers", "sgdsim.scenarios"],
    package_dir={"sgdsim": "sgdsim", "sgdsim.solvers": "solvers", "sgdsim.scenarios": "scenarios"},
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
        "test": ["pytest>=7", "hypothesis>=6", "xarray>=2023.1", "h5netcdf>=1.1"],
    },
    entry_points={
        "console_scripts": ["sgdsim = sgdsim.cli:main"],
        "sgdsim.scenarios": [
            "double-well = sgdsim.scenarios.double_well:SCENARIO",
            "saddle-escape = sgdsim.scenarios.saddle_escape:SCENARIO",
            "temperature = sgdsim.scenarios.temperature:SCENARIO",
        ],
    },
)
