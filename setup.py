from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="tfp_realnvp",
    version="0.1.0",
    description="RealNVP normalizing flows as TensorFlow Probability bijectors",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["tfp_realnvp", "tfp_realnvp.*"]),
    install_requires=[
        "numpy>=1.23",
        "tensorflow>=2.16",
        "tensorflow-probability[tf]>=0.24",
        "tf-keras>=2.16",
        "matplotlib>=3.7",
        "scikit-learn>=1.2",
    ],
    entry_points={"console_scripts": ["tfp-realnvp = tfp_realnvp.cli:main"]},
    extras_require={
        "dev": ["pytest>=7", "ruff>=0.6", "tensorboard"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
