"""The integer lowering, by concern: affine bookkeeping (`affine`), weight codes
(`weights`), LIF and logit folding (`neurons`), the rules per frontend op (`tensor`,
`arith`, `layers`, `neurons`; registry in `rules`) and the driver (`lowerer`). The pass
itself is `hqc.passes.lower_int`."""
