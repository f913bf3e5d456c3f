#!/usr/bin/python3
"""Converts the G2/97 molecules of Debian's python3-ase into extended XYZ plus regression targets.

Source (offline, `apt-get install python3-ase`): ase.data.g2_1 and ase.data.g2_2, plain dicts from
Raghavachari, Redfern & Pople, J. Chem. Phys. 106, 1063 (1997) and Staroverov et al., J. Chem. Phys. 119,
12129 (2003): MP2(full)/6-31G(d) geometries in Angstrom, experimental enthalpies of formation (molecules at
298 K, atoms at 0 K), B3LYP zero-point energies (ZPE) and thermal corrections H(298 K) - H(0 K), all in
kcal/mol.

Target: the experimental atomization energy at 0 K *without* zero-point energy, D0 (the analogue of QM9's
U0 atomization energy, SO3_MATH.md Appendix C), in eV:

    D0 = sum_atoms [dHf(atom, 0 K) - (H298 - H0)(element)] - dHf(molecule, 298 K) + (H298 - H0)(molecule)
    De = D0 + ZPE   (what ase.data.g2_1.get_atomization_energy returns, in kcal/mol)

1 kcal/mol = ase.units.kcal / ase.units.mol eV (0.0433641 eV). Only molecules made of H, C, N, O, F with at
least two atoms are kept (the species the per-atom signals of eqntk support), in the order of
g2_1.molecule_names then g2_2.molecule_names.

Writes into --out (default: tools/data/g2):
  g2.xyz           one extended-XYZ frame per molecule; comment line
                   `Properties=species:S:1:pos:R:3 name=<name> D0_eV=<D0> De_eV=<De> ZPE_eV=<ZPE> database=<G2-1|G2-2>`
  g2_D0_eV.npy     float64 (N,) D0 in eV, same order (for --train-labels / --test-labels)
  g2_names.txt     one name per line

Run:  /usr/bin/python3 tools/convert_g2.py [--out DIR]
"""
import argparse
import os
import sys

import numpy as np

try:
    from ase import units
    from ase.data import g2_1, g2_2
    from ase.symbols import string2symbols
except ImportError:
    sys.exit("convert_g2.py: ase is missing: apt-get install python3-ase (and run with /usr/bin/python3)")

ELEMENTS = {"H", "C", "N", "O", "F"}
KCAL_MOL_IN_EV = units.kcal / units.mol


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "g2"))
    args = parser.parse_args()

    data = dict(g2_1.data)
    data.update(g2_2.data)
    names = list(g2_1.molecule_names) + list(g2_2.molecule_names)

    frames, targets, kept = [], [], []
    for name in names:
        d = data[name]
        symbols = string2symbols(d["symbols"])
        if len(symbols) < 2 or not set(symbols) <= ELEMENTS:
            continue
        if any(k not in d for k in ("enthalpy", "ZPE", "thermal correction", "positions")):
            continue
        d0 = -d["enthalpy"] + d["thermal correction"]
        for a in symbols:
            d0 += data[a]["enthalpy"] - data[a]["thermal correction"]
        de = d0 + d["ZPE"]
        d0_ev, de_ev, zpe_ev = d0 * KCAL_MOL_IN_EV, de * KCAL_MOL_IN_EV, d["ZPE"] * KCAL_MOL_IN_EV
        lines = [str(len(symbols)),
                 "Properties=species:S:1:pos:R:3 name=%s D0_eV=%.10f De_eV=%.10f ZPE_eV=%.10f database=%s"
                 % (name, d0_ev, de_ev, zpe_ev, d.get("database", "?"))]
        for s, p in zip(symbols, d["positions"]):
            lines.append("%-2s %14.8f %14.8f %14.8f" % (s, p[0], p[1], p[2]))
        frames.append("\n".join(lines))
        targets.append(d0_ev)
        kept.append(name)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "g2.xyz"), "w") as f:
        f.write("\n".join(frames) + "\n")
    np.save(os.path.join(args.out, "g2_D0_eV.npy"), np.asarray(targets, dtype=np.float64))
    with open(os.path.join(args.out, "g2_names.txt"), "w") as f:
        f.write("\n".join(kept) + "\n")
    sizes = [int(fr.split("\n", 1)[0]) for fr in frames]
    print("convert_g2.py: %d H/C/N/O/F molecules (%d to %d atoms), D0 %.3f to %.3f eV -> %s"
          % (len(kept), min(sizes), max(sizes), min(targets), max(targets), os.path.normpath(args.out)))


if __name__ == "__main__":
    main()
