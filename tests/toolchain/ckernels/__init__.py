"""Tests of toolchain/ckernels."""
