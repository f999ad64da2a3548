"""`python -m hqc`: the hqc command line (the same as the `hqc` console script)."""

from hqc.cli import main

if __name__ == "__main__":
    main(prog_name="hqc")
