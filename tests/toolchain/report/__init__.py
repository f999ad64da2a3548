"""Tests of toolchain/report."""
