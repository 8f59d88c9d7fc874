"""Tests for wyoming_bodhi.pipeline.audio: conversion, framing and pacing, with plain function calls."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from wyoming.audio import AudioChunk, AudioChunkConverter

from wyoming_bodhi.pipeline import audio
from wyoming_bodhi.pipeline.audio import (
    HALFBAND_LOOKAHEAD,
    RESAMPLER_QUALITY,
    AudioFormat,
    Framer,
    FrameStream,
    HalfbandDecimator,
    Pacer,
    UnsupportedAudioFormat,
    converter_for,
    frame_bytes_for,
    halfband_taps,
)

Signal = npt.NDArray[np.float64]

# Most of these tests convert for Bodhi, 8 kHz; those for 16 kHz (iApp) say so.
BYTES_PER_SECOND_8K = 16000
AudioConverter = partial(audio.AudioConverter, target_rate=8000)


def frame_stream(frame_ms: int = 100, rate: int = 8000) -> FrameStream:
    return FrameStream(rate, frame_bytes_for(frame_ms, rate))


def stream_all(
    stream: FrameStream, data: bytes, fmt: tuple[int, int, int], sizes: Iterator[int] | None = None
) -> list[bytes]:
    """Push `data` in pieces of the given sizes (default: one piece), then flush: every frame."""
    frames: list[bytes] = []
    pos = 0
    while pos < len(data):
        size = len(data) if sizes is None else next(sizes)
        frames += stream.push(data[pos : pos + size], *fmt)
        pos += size
    return frames + stream.flush()


Convert = Callable[[bytes], bytes]

RATES = [8000, 11025, 16000, 22050, 44100, 48000, 96000]
WIDTHS = [1, 2, 3, 4]
# Samples at each end of a converted signal skipped when measuring: resampler start-up/tail.
EDGE = 400


# --- helpers ------------------------------------------------------------------------------


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> Signal:
    t = np.arange(round(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def pcm(signal: Signal, width: int) -> bytes:
    """Float signal in [-1, 1], shape (n,) or (n, channels), → interleaved PCM bytes."""
    flat = signal.reshape(-1)
    if width == 1:
        return (np.rint(flat * 127) + 128).astype(np.uint8).tobytes()
    if width == 2:
        return np.rint(flat * 32767).astype("<i2").tobytes()
    if width == 3:
        wide = np.rint(flat * 8388607).astype("<i4").tobytes()
        # The low three bytes of each little-endian int32.
        return np.frombuffer(wide, np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return np.rint(flat * 2147483647).astype("<i4").tobytes()


def s16(data: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(data, "<i2")


def convert_all(
    converter: AudioConverter, data: bytes, chunks: Iterator[int] | None = None
) -> bytes:
    """Feed `data` in pieces of the given sizes (default: one piece), then flush."""
    if chunks is None:
        return converter.convert(data) + converter.flush()
    out = []
    pos = 0
    while pos < len(data):
        size = next(chunks)
        out.append(converter.convert(data[pos : pos + size]))
        pos += size
    out.append(converter.flush())
    return b"".join(out)


def rms(samples: npt.NDArray[np.int16]) -> float:
    body = samples[EDGE:-EDGE].astype(np.float64)
    return float(np.sqrt(np.mean(body**2)))


def peak_hz(samples: npt.NDArray[np.int16], rate: int = 8000) -> float:
    body = samples[EDGE:-EDGE].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(body * np.hanning(len(body))))
    return float(np.argmax(spectrum)) * rate / len(body)


def random_sizes(seed: int, low: int = 1, high: int = 700) -> Iterator[int]:
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(low, high))


# --- AudioConverter -----------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("rate", RATES)
def test_every_format_gives_8k_mono_s16_with_the_tone_intact(
    rate: int, width: int, channels: int
) -> None:
    seconds = 1.0
    signal = np.repeat(tone(440, rate, seconds)[:, None], channels, axis=1)
    out = s16(convert_all(AudioConverter(rate, width, channels), pcm(signal, width)))

    assert abs(len(out) - seconds * 8000) <= 2
    assert peak_hz(out) == pytest.approx(440, abs=2)
    # Level preserved (0.5 full scale → RMS 0.5/√2), even through 8-bit quantisation.
    assert rms(out) == pytest.approx(0.5 / math.sqrt(2) * 32767, rel=0.02)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("channels", [1, 2])
def test_unsigned_8_bit_midpoint_is_silence(rate: int, channels: int) -> None:
    out = convert_all(AudioConverter(rate, 1, channels), b"\x80" * rate * channels)
    assert s16(out).any() == np.False_
    assert abs(len(out) // 2 - 8000) <= 2


def test_unsigned_8_bit_extremes_map_to_int16_extremes() -> None:
    out = s16(AudioConverter(8000, 1, 1).convert(bytes([0, 128, 255])))
    assert out.tolist() == [-32768, 0, 32512]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_32_bit_full_scale_maps_to_int16_full_scale(rate: int) -> None:
    high = np.full(rate, 2**31 - 1, "<i4").tobytes()
    low = np.full(rate, -(2**31), "<i4").tobytes()
    assert (s16(convert_all(AudioConverter(rate, 4, 1), high))[EDGE:-EDGE] == 32767).all()
    assert (s16(convert_all(AudioConverter(rate, 4, 1), low))[EDGE:-EDGE] == -32768).all()


def test_32_bit_keeps_sub_16_bit_detail_by_rounding() -> None:
    # 1.5 and -1.5 int16 LSBs in 32-bit units, round half to even: 2, -2; 0.25 LSB → 0.
    values = np.array([98304, -98304, 16384], "<i4").tobytes()
    assert s16(AudioConverter(8000, 4, 1).convert(values)).tolist() == [2, -2, 0]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("rate", [8000, 48000])
def test_stereo_in_opposite_phase_cancels_to_silence(rate: int, width: int) -> None:
    left = tone(1000, rate)
    out = s16(convert_all(AudioConverter(rate, width, 2), pcm(np.stack([left, -left], 1), width)))
    assert np.abs(out).max() <= 1


def test_channels_are_averaged_exactly() -> None:
    frames = np.array([[300, 600, 900], [-3, -3, -3], [32767, 32767, 32767]], "<i2")
    out = s16(AudioConverter(8000, 2, 3).convert(frames.tobytes()))
    assert out.tolist() == [600, -3, 32767]


def test_many_channels_average_their_tones() -> None:
    rate, channels = 16000, 6
    signal = np.zeros((rate, channels))
    signal[:, 0] = tone(440, rate, amp=0.9)
    signal[:, 4] = tone(1500, rate, amp=0.9)
    out = s16(convert_all(AudioConverter(rate, 2, channels), pcm(signal, 2)))
    spectrum = np.abs(np.fft.rfft(out[EDGE:-EDGE] * np.hanning(len(out) - 2 * EDGE)))
    bins = np.fft.rfftfreq(len(out) - 2 * EDGE, 1 / 8000)
    strongest = sorted(bins[np.argsort(spectrum)[-2:]])
    assert strongest == pytest.approx([440, 1500], abs=2)
    # Two tones of 0.9/6 each: RMS √2 · 0.15/√2.
    assert rms(out) == pytest.approx(0.15 * 32767, rel=0.02)


def test_overshoot_clips_instead_of_wrapping_around() -> None:
    rate = 16000
    square = np.where(np.arange(rate) % 32 < 16, 1.0, -1.0)
    ideal = soxr.resample(square * 32767, rate, 8000, quality=RESAMPLER_QUALITY)
    assert ideal.max() > 32767.5 and ideal.min() < -32768.5  # the test would be vacuous otherwise
    out = s16(convert_all(AudioConverter(rate, 2, 1), pcm(square, 2)))
    expected = np.clip(np.rint(ideal), -32768, 32767)
    assert np.abs(out.astype(np.int64) - expected).max() <= 1


FORMATS = [(16000, 2, 1), (44100, 4, 2), (48000, 1, 3), (22050, 2, 2), (8000, 2, 1), (8000, 4, 2)]


@pytest.mark.parametrize(("rate", "width", "channels"), FORMATS)
def test_chunking_does_not_change_the_output(rate: int, width: int, channels: int) -> None:
    rng = np.random.default_rng(rate + width + channels)
    signal = np.repeat(tone(440, rate, 0.5)[:, None], channels, 1)
    signal += rng.uniform(-0.1, 0.1, signal.shape)
    data = pcm(signal, width)
    whole = convert_all(AudioConverter(rate, width, channels), data)

    assert convert_all(AudioConverter(rate, width, channels), data, random_sizes(1)) == whole
    assert convert_all(AudioConverter(rate, width, channels), data, itertools.repeat(7)) == whole
    ones = convert_all(AudioConverter(rate, width, channels), data[:3001], itertools.repeat(1))
    assert ones == convert_all(AudioConverter(rate, width, channels), data[:3001])


def test_8k_s16_mono_passes_through_untouched() -> None:
    converter = AudioConverter(8000, 2, 1)
    data = bytes(range(256)) * 4
    assert converter.convert(data) is data
    assert converter.convert(b"\x01\x02\x03") == b"\x01\x02"
    assert converter.convert(b"\x04") == b"\x03\x04"
    assert converter.flush() == b""


def test_flush_drops_a_partial_sample_and_readies_the_converter_for_reuse() -> None:
    converter = AudioConverter(16000, 2, 2)
    data = pcm(np.stack([tone(440, 16000)] * 2, 1), 2)
    first = convert_all(converter, data + b"\x01\x02\x03")
    assert first == convert_all(AudioConverter(16000, 2, 2), data)
    assert convert_all(converter, data) == first


@pytest.mark.parametrize(
    ("rate", "width", "channels", "message"),
    [
        (0, 2, 1, "unsupported audio rate 0 Hz"),
        (-16000, 2, 1, "unsupported audio rate -16000 Hz"),
        (16000.0, 2, 1, "unsupported audio rate 16000.0 Hz"),
        (16000, 5, 1, "unsupported audio width 5 bytes: expected 1, 2, 3 or 4"),
        (16000, 0, 1, "unsupported audio width 0 bytes: expected 1, 2, 3 or 4"),
        (7999, 2, 1, "unsupported audio rate 7999 Hz: expected .* from 8000 to 192000"),
        (1, 2, 1, "unsupported audio rate 1 Hz"),
        (192001, 2, 1, "unsupported audio rate 192001 Hz"),
        (16000, True, 1, "unsupported audio width True bytes"),
        (16000, 2, 0, "unsupported audio channel count 0: expected 1 to 64"),
        (16000, 2, None, "unsupported audio channel count None"),
        (10**9, 2, 1, "unsupported audio rate 1000000000 Hz"),
        (16000, 2, 65, "unsupported audio channel count 65: expected 1 to 64"),
    ],
)
def test_invalid_formats_raise_actionable_errors(
    rate: object, width: object, channels: object, message: str
) -> None:
    with pytest.raises(UnsupportedAudioFormat, match=message) as info:
        AudioConverter(rate, width, channels)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnsupportedAudioFormat, match=message):
        frame_stream().push(b"", rate, width, channels)  # type: ignore[arg-type]


# --- anti-aliasing ------------------------------------------------------------------------


def alias_attenuation_db(convert: Convert, rate: int, alias_hz: float, channels: int) -> float:
    """Level of a tone above 4 kHz relative to an equal 1 kHz tone, both converted to 8 kHz."""
    levels = []
    for freq in (1000, alias_hz):
        signal = np.repeat(tone(freq, rate)[:, None], channels, 1)
        levels.append(rms(s16(convert(pcm(signal, 2)))))
    return 20 * math.log10(max(levels[1], 1e-9) / levels[0])


def ours(rate: int, channels: int) -> Convert:
    """What the bridge runs: the frame stream, the last frame's padding left out."""

    def convert(data: bytes) -> bytes:
        frames = stream_all(frame_stream(), data, (rate, 2, channels))
        samples = len(data) // (2 * channels)
        return b"".join(frames)[: 2 * math.ceil(samples * 8000 / rate)]

    return convert


def wyomings(rate: int, channels: int) -> Convert:
    converter = AudioChunkConverter(rate=8000, width=2, channels=1)
    return lambda data: converter.convert(AudioChunk(rate, 2, channels, data)).audio


def test_6khz_at_16khz_is_filtered_out_where_the_stock_converter_folds_it_to_2khz() -> None:
    assert alias_attenuation_db(ours(16000, 1), 16000, 6000, 1) <= -60
    # The stock converter (audioop.ratecv) has no anti-aliasing filter: 6 kHz comes out at
    # 2 kHz, barely attenuated. Proves the measurement can fail.
    assert alias_attenuation_db(wyomings(16000, 1), 16000, 6000, 1) > -60
    folded = s16(wyomings(16000, 1)(pcm(tone(6000, 16000), 2)))
    assert peak_hz(folded) == pytest.approx(2000, abs=2)


def test_5khz_at_48khz_stereo_is_filtered_out() -> None:
    assert alias_attenuation_db(ours(48000, 2), 48000, 5000, 2) <= -60
    assert alias_attenuation_db(wyomings(48000, 2), 48000, 5000, 2) > -60


# --- the half-band decimator: 16 kHz s16 mono → 8 kHz ------------------------------------


def test_the_bridge_decimates_16khz_mono_with_the_fir_and_everything_else_with_soxr() -> None:
    assert isinstance(converter_for(AudioFormat(16000, 2, 1), 8000, 800), HalfbandDecimator)
    for fmt in [(16000, 2, 2), (16000, 4, 1), (48000, 2, 1), (22050, 2, 1), (8000, 2, 1)]:
        assert isinstance(converter_for(AudioFormat(*fmt), 8000, 800), audio.AudioConverter), fmt
    # And the stream converts with it: 100 ms and the FIR's look-ahead of 16 kHz mono make a
    # frame at once; the same audio as stereo goes through soxr, which holds some back.
    enough = noise_s16(2 * 800 + HALFBAND_LOOKAHEAD)
    assert len(frame_stream().push(enough, 16000, 2, 1)) == 1
    stereo = np.repeat(np.frombuffer(enough, "<i2"), 2).tobytes()
    assert frame_stream().push(stereo, 16000, 2, 2) == []


def response_db(taps: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], Signal]:
    """(frequencies at 16 kHz, the filter's gain in dB), finely sampled."""
    spectrum = np.abs(np.fft.rfft(taps, 1 << 16))
    return np.fft.rfftfreq(1 << 16, 1 / 16000), 20 * np.log10(np.maximum(spectrum, 1e-300))


def test_the_halfband_filter_is_flat_in_the_speech_band_and_rejects_what_would_alias() -> None:
    taps = halfband_taps()
    assert len(taps) == 99 and np.count_nonzero(taps) == 51
    assert taps.sum() == pytest.approx(1.0)
    assert np.array_equal(taps, taps[::-1])  # linear phase
    freqs, gain = response_db(taps)
    # Flat where speech is (and where Bodhi's 8 kHz models listen).
    assert np.max(np.abs(gain[freqs <= 3600])) < 0.01
    # Everything from 4.4 kHz up folds onto 0-3.6 kHz at 8 kHz: at least 60 dB down (the
    # requirement); the design gives 70.
    assert -np.max(gain[freqs >= 4400]) >= 70


@pytest.mark.parametrize("alias_hz", [4400, 4800, 5200, 5600, 6000, 6500, 7000, 7500, 7900])
def test_a_tone_sweep_above_4khz_comes_out_at_least_60db_down(alias_hz: int) -> None:
    # Through the bridge's own path (frames, int16 output), against a 1 kHz tone of equal level.
    assert alias_attenuation_db(ours(16000, 1), 16000, alias_hz, 1) <= -60


def one_shot(x: npt.NDArray[np.int16], count: int) -> npt.NDArray[np.float64]:
    """The filter in float64, output m at input 2m, zeros outside the signal, rounded."""
    if not len(x):
        return np.zeros(count)
    full = np.convolve(x.astype(np.float64), halfband_taps())
    full = np.concatenate((full, np.zeros(2 * count + 100)))
    return np.clip(
        np.rint(full[HALFBAND_LOOKAHEAD : HALFBAND_LOOKAHEAD + 2 * count : 2]), -32768, 32767
    )


def noise_s16(samples: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return np.clip(rng.standard_normal(samples) * 8000, -32768, 32767).astype("<i2").tobytes()


HALFBAND = (16000, 2, 1)


@pytest.mark.parametrize("frame_ms", [50, 100, 64, 500])
@pytest.mark.parametrize("samples", [0, 1, 2, 97, 16000 * 2 + 123])
def test_the_frames_are_the_filter_exactly_and_whatever_the_chunking(
    frame_ms: int, samples: int
) -> None:
    data = noise_s16(samples, samples)
    once = stream_all(frame_stream(frame_ms), data, HALFBAND)
    frame_bytes = frame_ms * 16
    assert all(len(frame) == frame_bytes for frame in once)
    # Bit for bit the same for Home Assistant's 10 ms chunks, 20 ms, odd sizes, single
    # bytes and random sizes, as for one big chunk.
    for sizes in [
        itertools.repeat(320),
        itertools.repeat(640),
        itertools.repeat(333),
        itertools.repeat(1),
        random_sizes(samples),
    ]:
        assert stream_all(frame_stream(frame_ms), data, HALFBAND, sizes) == once
    # ⌈inputs / 2⌉ samples of audio, then the last frame's zero padding: nothing more billed.
    out = np.frombuffer(b"".join(once), "<i2")
    count = (samples + 1) // 2
    assert len(once) == math.ceil(count / (frame_ms * 8))
    assert not out[count:].any()
    # Within one LSB of the filter computed in float64 (the float32 sums round differently).
    expected = one_shot(np.frombuffer(data, "<i2"), count)
    assert np.abs(out[:count] - expected).max(initial=0) <= 1


@pytest.mark.parametrize("frame_ms", [50, 100])
@pytest.mark.parametrize("chunk_samples", [160, 320, 1024, 37])
def test_a_frame_leaves_as_soon_as_the_audio_that_completes_it_has_arrived(
    frame_ms: int, chunk_samples: int
) -> None:
    data = noise_s16(16000 * 2 + 123)
    stream = frame_stream(frame_ms)
    frames: list[bytes] = []
    for offset in range(0, len(data), 2 * chunk_samples):
        frames += stream.push(data[offset : offset + 2 * chunk_samples], *HALFBAND)
        fed = min(offset + 2 * chunk_samples, len(data)) // 2
        # Output m needs input up to 2m + 49 (3 ms of look-ahead): exactly the frames the
        # input so far allows have left, never fewer (no added latency), never more.
        outputs = max(0, (fed - HALFBAND_LOOKAHEAD - 1) // 2 + 1)
        assert len(frames) == outputs // (8 * frame_ms), fed


def test_with_10ms_chunks_a_50ms_frame_leaves_with_the_next_chunk() -> None:
    data = noise_s16(16000)
    stream = frame_stream(50)
    released = [len(stream.push(data[i : i + 320], *HALFBAND)) for i in range(0, len(data), 320)]
    # The chunks ending at 60, 110, 160 ms … each release one frame (the 3 ms look-ahead).
    assert [i for i, n in enumerate(released) if n] == list(range(5, 100, 5))


def test_flush_ends_the_stream_and_readies_it_for_the_next() -> None:
    data = noise_s16(9001)
    stream = frame_stream(50)
    first = stream_all(stream, data + b"\x7f", HALFBAND)  # a dangling half sample is dropped
    assert first == stream_all(frame_stream(50), data, HALFBAND)
    assert stream_all(stream, data, HALFBAND) == first
    assert stream.flush() == []


def test_16khz_mono_for_a_16khz_engine_passes_through_untouched() -> None:
    # iApp takes 16 kHz: Home Assistant's audio needs no resampling at all.
    data = noise_s16(16000 + 7)
    stream = frame_stream(100, rate=16000)
    frames = stream_all(stream, data, HALFBAND, itertools.repeat(320))
    assert b"".join(frames)[: len(data)] == data
    # Not even decoded: the converter hands back the very bytes.
    assert converter_for(AudioFormat(16000, 2, 1), 16000, 1600).convert(data) is data


# --- FrameStream: formats changing mid-stream -----------------------------------------------


def test_frame_stream_matches_a_plain_converter_and_framer_for_one_format() -> None:
    data = pcm(tone(440, 48000, 1.0137), 2)
    stream = frame_stream()
    assert stream.format is None
    frames = stream_all(stream, data, (48000, 2, 1), itertools.repeat(641))
    assert stream.format == AudioFormat(48000, 2, 1)
    framer = Framer(1600)
    expected = framer.push(convert_all(AudioConverter(48000, 2, 1), data))
    assert frames == [*expected, framer.flush()]


@pytest.mark.parametrize("first_seconds", [0.5, 0.537, 1.0])
def test_a_format_change_mid_stream_keeps_the_old_tail_and_continues_the_frames(
    first_seconds: float,
) -> None:
    first = pcm(tone(440, 48000, first_seconds), 2)
    second = pcm(tone(440, 16000), 2)
    third = pcm(np.stack([tone(440, 48000, 0.3)] * 2, 1), 4)
    stream = frame_stream()
    frames = stream.push(first + b"\x7f", 48000, 2, 1)  # a dangling half sample
    frames += stream.push(second, *HALFBAND)
    assert stream.format == AudioFormat(16000, 2, 1)
    frames += stream.push(third, 48000, 4, 2)
    frames += stream.flush()

    # Each part converted on its own, end to end: the same audio, and the frames carry on
    # across each change (the decimator starts at the framer's phase).
    expected = convert_all(AudioConverter(48000, 2, 1), first)
    expected += b"".join(stream_all(frame_stream(), second, HALFBAND))[: len(second) // 2]
    expected += convert_all(AudioConverter(48000, 4, 2), third)
    out = b"".join(frames)
    assert all(len(frame) == 1600 for frame in frames)
    assert len(frames) == math.ceil(len(expected) / 1600)
    got, want = s16(out[: len(expected)]), s16(expected)
    # The decimator's rows fall elsewhere on the frame grid: the same filter, its float32
    # sums grouped differently, within one LSB.
    assert np.abs(got.astype(np.int64) - want).max() <= 1
    assert not s16(out[len(expected) :]).any()


def test_an_invalid_chunk_leaves_the_stream_intact() -> None:
    data = pcm(tone(440, 16000), 2)
    stream = frame_stream()
    frames = stream.push(data[:10001], 16000, 2, 1)
    with pytest.raises(UnsupportedAudioFormat):
        stream.push(data, 16000, 5, 1)
    assert stream.format == AudioFormat(16000, 2, 1)
    frames += stream.push(data[10001:], 16000, 2, 1) + stream.flush()
    assert frames == stream_all(frame_stream(), data, HALFBAND)


# --- Framer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk_ms", "rate", "size"),
    [(50, 8000, 800), (100, 8000, 1600), (320, 8000, 5120), (500, 8000, 8000), (32, 16000, 1024),
     (100, 16000, 3200)],
)  # fmt: skip
def test_frame_bytes_for(chunk_ms: int, rate: int, size: int) -> None:
    assert frame_bytes_for(chunk_ms, rate) == size


@pytest.mark.parametrize("chunk_ms", [0, -100, 100.0, "100"])
def test_frame_bytes_for_rejects_what_is_not_a_length(chunk_ms: object) -> None:
    with pytest.raises(ValueError, match=r"expected a positive whole number"):
        frame_bytes_for(chunk_ms, 8000)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -2, 1601])
def test_framer_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="invalid frame size"):
        Framer(size)


@pytest.mark.parametrize("total", [0, 1, 1598, 1600, 1602, 16000, 16001, 33333])
def test_framer_emits_exact_frames_and_pads_only_the_last(total: int) -> None:
    size = 1600
    data = np.random.default_rng(total).integers(1, 256, total, dtype=np.uint8).tobytes()
    framer = Framer(size)
    frames: list[bytes] = []
    pos = 0
    for n in random_sizes(total, 1, 5000):
        if pos >= len(data):
            break
        frames += framer.push(data[pos : pos + n])
        assert framer.buffered < size
        pos += n
    assert all(len(frame) == size for frame in frames)
    assert b"".join(frames) == data[: len(frames) * size]

    last = framer.flush()
    if total % size == 0:
        assert last is None  # aligned: nothing padded, nothing extra billed
    else:
        assert last is not None and len(last) == size
        assert last == data[len(frames) * size :] + bytes(size - total % size)
        frames.append(last)
    assert len(frames) == math.ceil(total / size)
    assert framer.flush() is None


def test_framer_handles_one_byte_pushes_and_one_big_push() -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    framer = Framer(800)
    small = [frame for byte in data for frame in framer.push(bytes([byte]))]
    assert b"".join(small) == data[: 10240 - 10240 % 800]
    big = Framer(800)
    assert big.push(data) == small
    assert framer.flush() == big.flush() == data[-640:] + bytes(160)


def test_framer_reset_drops_buffered_audio() -> None:
    framer = Framer(800)
    assert framer.push(b"\x01" * 900) == [b"\x01" * 800]
    framer.reset()
    assert framer.buffered == 0
    assert framer.flush() is None
    assert framer.push(b"") == []


# --- Pacer --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def send_when_due(pacer: Pacer, clock: FakeClock) -> float:
    """Wait (by advancing the fake clock) as the pacer says, send, and return the send time."""
    delay = pacer.delay()
    assert delay >= 0
    clock.now += delay
    assert pacer.delay() == 0
    pacer.sent()
    return clock.now


@pytest.mark.parametrize("lead", [0.0, 0.5])
def test_live_audio_is_never_delayed(lead: float) -> None:
    clock = FakeClock()
    pacer = Pacer(0.1, lead, clock)
    start = clock.now
    for i in range(600):
        clock.now = start + (i + 1) * 0.1  # frame i exists once its 100 ms have been captured
        assert pacer.delay() == 0
        pacer.sent()


def test_live_audio_with_jitter_within_the_lead_is_never_delayed() -> None:
    clock = FakeClock()
    pacer = Pacer(0.1, 0.3, clock)
    # Network delays of up to 0.25 s, the worst on the first frame so later ones look early;
    # arrivals stay in order (TCP).
    delays = np.random.default_rng(5).uniform(0, 0.25, 600)
    delays[0] = 0.25
    arrivals = np.maximum.accumulate(clock.now + 0.1 * np.arange(1, 601) + delays)
    for arrival in arrivals:
        clock.now = float(arrival)
        assert pacer.delay() == 0
        pacer.sent()


@pytest.mark.parametrize("lead", [0.0, 0.25, 1.0, 3.0])
def test_a_burst_goes_out_lead_ahead_then_at_real_time(lead: float) -> None:
    clock = FakeClock()
    pacer = Pacer(0.1, lead, clock)
    start = clock.now
    times = [send_when_due(pacer, clock) - start for _ in range(100)]  # 10 s offered at once
    expected = [max(0.0, i * 0.1 - lead) for i in range(100)]
    assert times == pytest.approx(expected, abs=1e-9)
    # Never more than `lead` of audio ahead of real time (counting audio started, not finished).
    assert all(i * 0.1 - t <= lead + 1e-9 for i, t in enumerate(times))


def test_lead_zero_is_strict_real_time() -> None:
    clock = FakeClock()
    pacer = Pacer(0.05, 0.0, clock)
    start = clock.now
    times = [send_when_due(pacer, clock) - start for _ in range(40)]
    assert np.diff(times) == pytest.approx([0.05] * 39, abs=1e-9)


def test_a_long_burst_does_not_drift() -> None:
    clock = FakeClock(123456.789)
    pacer = Pacer(0.1, 0.5, clock)
    start = clock.now
    for _ in range(36_000):  # an hour of audio
        last = send_when_due(pacer, clock)
    assert last - start == pytest.approx(35_999 * 0.1 - 0.5, abs=1e-6)


def test_a_stalled_source_is_not_punished_when_it_resumes() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer(0.1, 0.0, clock)
    for i in range(10):  # 1 s live
        clock.now = i * 0.1
        assert pacer.delay() == 0
        pacer.sent()
    clock.now = 3.0  # stalled for 2 s; the 2 s it buffered meanwhile arrive together
    for _ in range(20):
        assert pacer.delay() == 0
        pacer.sent()
    # Caught up with the schedule: the source is live again and still never waits.
    for i in range(30, 60):
        clock.now = i * 0.1 + 0.01
        assert pacer.delay() == 0
        pacer.sent()
    # A burst now is held to the schedule, and no more.
    assert pacer.delay() == pytest.approx(60 * 0.1 - clock.now)


def test_delay_counts_from_the_first_offer_not_from_construction() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer(0.1, 0.0, clock)
    clock.now = 50.0
    assert pacer.delay() == 0
    assert pacer.delay() == 0  # asking again is not sending
    pacer.sent()
    assert pacer.delay() == pytest.approx(0.1)
    assert pacer.delay(now=50.04) == pytest.approx(0.06)
    assert pacer.frames_sent == 1


def test_reset_starts_a_new_schedule() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer(0.1, 0.2, clock)
    for _ in range(10):
        send_when_due(pacer, clock)
    clock.now = 5.0
    pacer.reset()
    assert pacer.frames_sent == 0
    times = [send_when_due(pacer, clock) for _ in range(5)]
    assert times == pytest.approx([5.0, 5.0, 5.0, 5.1, 5.2])


def test_sent_without_asking_starts_the_schedule() -> None:
    clock = FakeClock(10.0)
    pacer = Pacer(0.1, 0.0, clock)
    pacer.sent()
    assert pacer.delay() == pytest.approx(0.1)


@pytest.mark.parametrize(("frame", "lead"), [(0.0, 0.0), (-0.1, 0.0), (0.1, -1.0), (math.nan, 0.0)])
def test_pacer_rejects_bad_arguments(frame: float, lead: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        Pacer(frame, lead)


def test_pacer_started_at_arrival_lets_a_handshake_backlog_catch_up() -> None:
    """With lead 0, audio queued during a 0.3 s handshake must not stay 0.3 s late."""
    clock = FakeClock(0.0)
    pacer = Pacer(0.1, 0.0, clock=clock)
    pacer.start()  # the first frame arrives at t=0 while the connection is being made
    clock.now = 0.3  # connected: three frames of backlog
    delays = []
    for _ in range(4):
        delays.append(pacer.delay())
        pacer.sent()
    assert delays == [0.0, 0.0, 0.0, 0.0]
    assert pacer.delay() == pytest.approx(0.1)  # then real time: frame 4 is due at 0.4
    pacer.start(5.0)  # a second start does not move the schedule
    assert pacer.delay() == pytest.approx(0.1)
