"""Rebuild ``fsdd.npz.xz`` (the compact, lossless copy of FSDD) from a checkout of FSDD.

Usage (from the repository root)::

    python rnn_ref/data/fsdd/pack.py PATH/TO/free-spoken-digit-dataset [--out FILE]

``PATH`` is the upstream repository (github.com/Jakobovski/free-spoken-digit-dataset, commit
26eb9aaf76e81b692f806f9140c2d2777410d7a1) or any folder holding its ``recordings/`` (or the WAV
files themselves). Every ``{digit}_{speaker}_{index}.wav`` must be 8 kHz, 16-bit, mono: the
samples are stored unchanged (only the container differs), and the script prints the SHA-256 of
the concatenated samples, which the loader checks on every decode and README.md records.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from scipy.io import wavfile

HERE = Path(__file__).resolve().parent
NAME = re.compile(r"^([0-9])_(.+)_([0-9]+)\.wav$")


def read_recordings(folder: Path):
    """The int16 samples and labels of every WAV, ordered by speaker, digit, index."""
    if (folder / "recordings").is_dir():
        folder = folder / "recordings"
    rows = []
    for p in sorted(folder.glob("*.wav")):
        m = NAME.match(p.name)
        if m is None:
            raise SystemExit(f"{p}: not named {{digit}}_{{speaker}}_{{index}}.wav")
        rate, x = wavfile.read(p)
        if rate != 8000 or x.dtype != np.int16 or x.ndim != 1:
            raise SystemExit(f"{p}: expected 8 kHz 16-bit mono, got {rate} Hz {x.dtype} {x.shape}")
        rows.append((m.group(2), int(m.group(1)), int(m.group(3)), x))
    if not rows:
        raise SystemExit(f"no WAV files in {folder}")
    rows.sort(key=lambda r: r[:3])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fsdd", type=Path, help="an FSDD checkout (or its recordings/ folder)")
    ap.add_argument("--out", type=Path, default=HERE / "fsdd.npz.xz")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE.parents[2]))  # run by path from a source checkout
    from rnn_ref.datasets import _pack_spoken_digits

    rows = read_recordings(args.fsdd)
    speaker, digit, index, audio = zip(*rows, strict=True)
    print(f"read {len(rows)} recordings, {sum(a.size for a in audio)} samples, from {args.fsdd}")
    sha = _pack_spoken_digits(args.out, audio, digit, speaker, index, 8000)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    print(f"sha256 of the concatenated int16 samples: {sha}")
    meta = args.fsdd / "metadata.py"
    if meta.is_file():  # a dict literal named `metadata`
        text = meta.read_text()
        import ast

        speakers = ast.literal_eval(text[text.index("{") :])
        out = HERE / "speakers.json"
        out.write_text(json.dumps(speakers, indent=2, sort_keys=True) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
