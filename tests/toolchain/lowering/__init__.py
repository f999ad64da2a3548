"""Tests of toolchain/lowering."""
