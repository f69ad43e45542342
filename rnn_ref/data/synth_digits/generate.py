"""Generate the synthetic spoken digits (``synth_digits.npz.xz``) with espeak-ng and flite.

Run once, from the repository root, on a machine with the two synthesisers (Debian/Ubuntu:
``sudo apt-get install espeak-ng flite``)::

    python -m rnn_ref.data.synth_digits.generate

(or ``python rnn_ref/data/synth_digits/generate.py``).

It speaks "zero" ... "nine" in every voice of a fixed list drawn with a fixed seed:

- espeak-ng: 8 English accents (``en-us``, ``en-us-nyc``, ``en-gb``, ``en-gb-x-rp``,
  ``en-gb-scotland``, ``en-gb-x-gbclan`` (Lancaster), ``en-gb-x-gbcwmd`` (West Midlands),
  ``en-029`` (Caribbean)), each with 13 voice variants (``+m3``, ``+f2``, ``+klatt4``, ``+Annie``
  ...: formant, breathiness and pitch-range settings) at a random speed (``-s``, words per
  minute) and base pitch (``-p``, 0-99);
- flite: its built-in voices ``kal`` and ``kal16`` (diphone), ``awb``, ``rms`` and ``slt``
  (clustergen), each at 4 durations (``duration_stretch``) and mean pitches
  (``int_f0_target_mean``, Hz).

Each waveform is averaged to mono, resampled to 8 kHz (``scipy.signal.resample_poly``), trimmed of
leading and trailing silence like FSDD (10 ms frames quieter than -40 dB of the loudest frame
are cut, keeping one quiet frame before and two after), scaled to a peak level drawn per voice
(log-uniform 0.05-0.7, like the spread of FSDD's speakers) and rounded to 16 bits. Synthesis is
deterministic, so each voice says each digit once (``index`` 0). The result is written with the
same lossless container as FSDD (``rnn_ref.datasets._pack_spoken_digits``), plus ``voices.json``
(each voice's engine, accent, variant, settings; the engine versions).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

HERE = Path(__file__).resolve().parent
SEED = 13
RATE = 8000
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

ESPEAK_ACCENTS = (
    "en-us",
    "en-us-nyc",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
)
# espeak-ng's voice variants that sound like a person (not robots, whispers or effects).
ESPEAK_VARIANTS = (
    *(f"m{i}" for i in range(1, 8)),
    *(f"f{i}" for i in range(1, 6)),
    *("klatt", "klatt2", "klatt3", "klatt4", "klatt6"),
    *("Alex", "Andy", "Annie", "Denis", "Gene", "Hugo", "Jacky", "Lee", "Michael", "Mike"),
    *("adam", "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david"),
    *("ed", "edward", "grandma", "grandpa", "gustave", "iven", "john", "linda", "max"),
    *("michel", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "shelby"),
    *("steph", "travis", "victor", "zac"),
)
VARIANTS_PER_ACCENT = 13
ESPEAK_SPEED = (120, 210)  # words per minute (espeak-ng's default is 175)
ESPEAK_PITCH = (20, 80)  # 0-99 (default 50)
# flite's built-in voices and the range of mean pitch (Hz) that suits each.
FLITE_VOICES = {
    "kal": (85, 140),
    "kal16": (85, 140),
    "awb": (85, 140),
    "rms": (85, 140),
    "slt": (150, 230),
}
FLITE_STRETCH = (0.85, 1.0, 1.15, 1.3)
PEAK = (0.05, 0.7)  # peak level per voice, log-uniform


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(
            f"{tool} is not installed: the generator needs espeak-ng and flite "
            "(Debian/Ubuntu: sudo apt-get install espeak-ng flite). The book and the tests do "
            "not: they read the stored synth_digits.npz.xz."
        )
    return path


def engine_versions() -> dict[str, str]:
    def text(cmd):  # flite --version exits with status 1, so the status is not checked
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return " ".join((out.stdout + out.stderr).split())

    versions = {
        "espeak-ng": text(["espeak-ng", "--version"]),
        "flite": text(["flite", "--version"]),
    }
    for package in ("espeak-ng", "flite"):  # the Debian package versions, where there are any
        deb = text(["dpkg-query", "-W", "-f", "${Version}", package])
        if deb and "no packages found" not in deb:
            versions[f"{package} (Debian package)"] = deb
    return versions


def voice_list(rng: np.random.Generator) -> list[dict]:
    """The voices, each a dict of its engine settings and a readable name (the speaker)."""
    voices = []
    for accent in ESPEAK_ACCENTS:
        picked = rng.choice(len(ESPEAK_VARIANTS), size=VARIANTS_PER_ACCENT, replace=False)
        for k in sorted(picked):
            variant = ESPEAK_VARIANTS[k]
            speed = int(rng.integers(ESPEAK_SPEED[0], ESPEAK_SPEED[1] + 1))
            pitch = int(rng.integers(ESPEAK_PITCH[0], ESPEAK_PITCH[1] + 1))
            voices.append(
                {
                    "engine": "espeak-ng",
                    "accent": accent,
                    "variant": variant,
                    "speed_wpm": speed,
                    "pitch": pitch,
                    "name": f"espeak:{accent}+{variant}:s{speed}:p{pitch}",
                }
            )
    for voice, (lo, hi) in FLITE_VOICES.items():
        for stretch in FLITE_STRETCH:
            f0 = int(rng.integers(lo, hi + 1))
            voices.append(
                {
                    "engine": "flite",
                    "voice": voice,
                    "duration_stretch": stretch,
                    "f0_mean_hz": f0,
                    "name": f"flite:{voice}:d{stretch:.2f}:f{f0}",
                }
            )
    for v in voices:
        v["peak"] = round(float(np.exp(rng.uniform(np.log(PEAK[0]), np.log(PEAK[1])))), 4)
    return voices


def synthesise(voice: dict, word: str, wav: Path) -> tuple[int, np.ndarray]:
    if voice["engine"] == "espeak-ng":
        cmd = ["espeak-ng", "-v", f"{voice['accent']}+{voice['variant']}"]
        cmd += ["-s", str(voice["speed_wpm"]), "-p", str(voice["pitch"]), "-w", str(wav), word]
    else:
        cmd = ["flite", "-voice", voice["voice"]]
        cmd += ["--setf", f"duration_stretch={voice['duration_stretch']}"]
        cmd += ["--setf", f"int_f0_target_mean={voice['f0_mean_hz']}", "-t", word, "-o", str(wav)]
    subprocess.run(cmd, check=True, capture_output=True)
    rate, x = wavfile.read(wav)
    return int(rate), x


def to_8k_float(rate: int, x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    if np.issubdtype(x.dtype, np.integer) or np.abs(x).max() > 1.5:
        x = x / 32768.0
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != RATE:
        g = np.gcd(rate, RATE)
        x = resample_poly(x, RATE // g, rate // g)
    return x


def trim(x: np.ndarray, frame: int = RATE // 100, floor_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing 10 ms frames quieter than floor_db below the loudest frame."""
    n = x.size // frame
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    active = np.flatnonzero(rms > rms.max() * 10 ** (floor_db / 20))
    start = max(active[0] - 1, 0) * frame
    stop = min((active[-1] + 3) * frame, x.size)
    return x[start:stop]


def main() -> int:
    for tool in ("espeak-ng", "flite"):
        _need(tool)
    sys.path.insert(0, str(HERE.parents[2]))  # run by path from a source checkout
    from rnn_ref.datasets import _pack_spoken_digits

    versions = engine_versions()
    for k, v in versions.items():
        print(f"{k}: {v}")
    rng = np.random.default_rng(SEED)
    voices = voice_list(rng)
    print(f"{len(voices)} voices x {len(WORDS)} digits (seed {SEED})")
    audio, digit, speaker, index = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        for n, voice in enumerate(sorted(voices, key=lambda v: v["name"])):
            takes = [trim(to_8k_float(*synthesise(voice, w, wav))) for w in WORDS]
            gain = voice["peak"] / max(np.abs(t).max() for t in takes)
            for d, t in enumerate(takes):
                audio.append(np.round(t * gain * 32768.0).clip(-32768, 32767).astype(np.int16))
                digit.append(d)
                speaker.append(voice["name"])
                index.append(0)
            if n % 20 == 0 or n == len(voices) - 1:
                print(f"  {n + 1:4d}/{len(voices)} {voice['name']}", flush=True)
    out = HERE / "synth_digits.npz.xz"
    meta = json.dumps({"seed": SEED, "versions": versions})
    sha = _pack_spoken_digits(out, audio, digit, speaker, index, RATE, meta=meta)
    lengths = np.array([a.size for a in audio]) / RATE
    print(
        f"{len(audio)} recordings, {lengths.sum() / 60:.1f} minutes, "
        f"median {np.median(lengths):.3f} s (min {lengths.min():.3f}, max {lengths.max():.3f})"
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), sha256 of the samples {sha}")
    info = {
        "seed": SEED,
        "sample_rate": RATE,
        "versions": versions,
        "sha256": sha,
        "voices": voices,
    }
    (HERE / "voices.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {HERE / 'voices.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
