"""Tests of toolchain/search."""
