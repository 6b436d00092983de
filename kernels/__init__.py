"""Triton kernels (fused patchify, flash attention), their pure-torch references and the backend choice."""
