import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# The version lives in tfp_realnvp/__init__.py alone; read, not imported (that needs TensorFlow).
VERSION = re.search(
    r'^__version__ = "([^"]+)"$',
    (HERE / "tfp_realnvp" / "__init__.py").read_text(encoding="utf-8"),
    re.MULTILINE,
).group(1)

CLI = ["matplotlib>=3.7", "scikit-learn>=1.2"]  # the command line's pictures; bundled digits
BUILD = ["build>=1", "setuptools>=61", "wheel"]  # `make test` builds the wheel it tests

setup(
    name="tfp_realnvp",
    version=VERSION,
    description="RealNVP normalizing flows as TensorFlow Probability bijectors",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["tfp_realnvp", "tfp_realnvp.*"]),
    package_data={"tfp_realnvp": ["py.typed"]},
    install_requires=[
        "numpy>=1.23",
        "tensorflow>=2.16",
        "tensorflow-probability[tf]>=0.24",
        "tf-keras>=2.16",
    ],
    entry_points={"console_scripts": ["tfp-realnvp = tfp_realnvp.cli:main"]},
    extras_require={
        "cli": CLI,
        "all": CLI,
        "dev": [*CLI, *BUILD, "pytest>=7", "pytest-xdist>=3", "ruff>=0.6", "tensorboard"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Typing :: Typed",
    ],
)
