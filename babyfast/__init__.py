"""babyfast: pretrain video foundation models on what a baby sees, with one GPU.

The store (`babyfast.store`), the synthetic world (`babyfast.synth`) and the clip loader live here;
kernels, training and evaluation are `babyfast.kernels`, `babyfast.train`, `babyfast.eval`.
"""
__version__ = "0.1.0"

__all__ = ["__version__"]
