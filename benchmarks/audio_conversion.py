"""CPU and anti-aliasing figures for wyoming_bodhi.audio vs wyoming's AudioChunkConverter.

Run: python benchmarks/audio_conversion.py   (single-threaded; best of 5 runs; 20 ms chunks)
"""

import math
import time

import numpy as np
import soxr
from wyoming.audio import AudioChunk, AudioChunkConverter

import wyoming_bodhi.audio as audio
from wyoming_bodhi.audio import AudioConverter, Framer, frame_bytes_for

SECONDS = 120


def pcm16(x):
    return np.rint(x * 32767).astype("<i2").tobytes()


def chunks(rate, channels, seconds=SECONDS):
    rng = np.random.default_rng(0)
    x = np.clip(rng.standard_normal(rate * seconds * channels) * 0.1, -1, 1)
    data = pcm16(x)
    step = rate // 50 * 2 * channels
    return [data[i : i + step] for i in range(0, len(data), step)]


def cpu_ms_per_s(make, rate, channels, reps=5):
    parts = chunks(rate, channels)
    best = math.inf
    for _ in range(reps):
        convert = make(rate, channels)
        t = time.process_time()
        for p in parts:
            convert(p)
        best = min(best, time.process_time() - t)
    return best / SECONDS * 1000


def ours(rate, ch):
    return AudioConverter(rate, 2, ch).convert


def ours_framed(rate, ch):
    conv, framer = AudioConverter(rate, 2, ch), Framer(frame_bytes_for(100))
    return lambda d: framer.push(conv.convert(d))


def stock(rate, ch):
    c = AudioChunkConverter(rate=8000, width=2, channels=1)
    return lambda d: c.convert(AudioChunk(rate, 2, ch, d)).audio


def tone(f, rate, ch, amp=0.5, secs=2.0):
    t = np.arange(int(rate * secs)) / rate
    return np.repeat((amp * np.sin(2 * np.pi * f * t))[:, None], ch, 1)


def level(out):
    y = np.frombuffer(out, "<i2")[400:-400].astype(float)
    return np.sqrt(np.mean(y**2))


def atten_db(convert_whole, rate, ch, f):
    ref = level(convert_whole(pcm16(tone(1000, rate, ch)), rate, ch))
    return 20 * math.log10(
        max(level(convert_whole(pcm16(tone(f, rate, ch)), rate, ch)), 1e-9) / ref
    )


def ours_whole(d, rate, ch):
    c = AudioConverter(rate, 2, ch)
    return c.convert(d) + c.flush()


def stock_whole(d, rate, ch):
    return stock(rate, ch)(d)


print(f"CPU ms per second of audio, 20 ms chunks, s16 in, best of 5 ({SECONDS} s of audio)")
for name, make in [
    ("wyoming_bodhi AudioConverter", ours),
    ("  + Framer(100 ms)", ours_framed),
    ("wyoming AudioChunkConverter", stock),
]:
    row = [f"{cpu_ms_per_s(make, r, c):.3f}" for r, c in ((16000, 1), (48000, 2), (8000, 1))]
    print(f"  {name:30s} 16k mono {row[0]}  48k stereo {row[1]}  8k mono {row[2]}")


def float_atten_db(q, rate, f):
    def lvl(freq):
        y = soxr.resample(tone(freq, rate, 1)[:, 0] * 32767, rate, 8000, quality=q)[400:-400]
        return np.sqrt(np.mean(y**2))

    return 20 * math.log10(lvl(f) / lvl(1000))


def mean_lag_ms(q, rate):
    s = soxr.ResampleStream(rate, 8000, 1, quality=q)
    step, n_in, n_out, lags = rate // 50, 0, 0, []
    for _ in range(500):
        n_in += step
        n_out += len(s.resample_chunk(np.zeros(step, np.float32)))
        lags.append((n_in * 8000 / rate - n_out) / 8)
    return np.mean(lags[50:])


for q in ("MQ", "HQ", "VHQ"):
    audio.RESAMPLER_QUALITY = q  # type: ignore[misc]
    row = [f"{cpu_ms_per_s(ours, r, c):.3f}" for r, c in ((16000, 1), (48000, 2), (44100, 1))]
    a = [f"{float_atten_db(q, r, f):.0f}" for r, f in ((16000, 6000), (48000, 5000))]
    worst = max(
        float_atten_db(q, r, f)
        for r in (16000, 22050, 44100, 48000)
        for f in range(4400, r // 2, 300)
    )
    pb = float_atten_db(q, 16000, 3600)
    lag = [f"{mean_lag_ms(q, r):.0f}" for r in (16000, 22050, 44100, 48000)]
    print(
        f"  quality {q}: CPU ms/s 16k {row[0]} 48k st {row[1]} 44.1k {row[2]} | float-domain "
        f"alias 6k@16k {a[0]} dB, 5k@48k {a[1]} dB, worst 4.4k+ {worst:.0f} dB, 3.6k passband "
        f"{pb:.2f} dB | mean buffering ms at 16/22/44/48k {'/'.join(lag)}"
    )
audio.RESAMPLER_QUALITY = "MQ"  # type: ignore[misc]
print("Alias attenuation vs 1 kHz in the int16 output (dB; ≤ -60 required; -261 = all-zero):")
for name, fn in (("ours (MQ)", ours_whole), ("wyoming stock", stock_whole)):
    a = [
        f"{atten_db(fn, r, c, f):7.1f}"
        for r, c, f in ((16000, 1, 6000), (48000, 2, 5000), (22050, 1, 7000))
    ]
    print(f"  {name:14s} 6k@16k mono {a[0]}   5k@48k stereo {a[1]}   7k@22.05k {a[2]}")
