"""Audio reading (soundfile + PyAV), resampling, mixdown, cropping and augmentation."""
import numpy as np
import pytest
import soundfile as sf
import torch

from emomm.data.pipelines.waveforms import ClipOptions, WaveAugment
from emomm.media.audio import AudioReadError, audio_duration, crop_or_pad, load_audio, trim_silence
from tests.voice_fixtures import tone, write_av


def peak_hz(wave: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[spec.argmax()])


def test_resampling_keeps_the_pitch_and_stereo_is_mixed_down(tmp_path):
    sr = 48000
    t = np.arange(sr) / sr
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.25 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "a.wav"
    sf.write(path, np.stack([left, right], 1), sr, subtype="FLOAT")

    native, native_sr = load_audio(path)
    assert native_sr == 48000 and native.shape == (48000,) and native.dtype == np.float32
    np.testing.assert_allclose(native, (left + right) / 2, atol=1e-6)   # mixdown = channel mean
    both, _ = load_audio(path, mono=False)
    assert both.shape == (2, 48000)
    np.testing.assert_allclose(both[1], right, atol=1e-6)

    wave, out_sr = load_audio(path, sample_rate=16000)
    assert out_sr == 16000 and wave.shape == (16000,)
    assert abs(peak_hz(wave, 16000) - 440) <= 2
    # Amplitude survives the (band-limited) resampling: 0.375 peak away from the edges.
    assert np.abs(wave[2000:-2000]).max() == pytest.approx(0.375, abs=0.01)


@pytest.mark.parametrize("fmt,ext,sr", [("FLAC", "flac", 16000), ("OGG", "ogg", 22050),
                                         ("MP3", "mp3", 44100)])
def test_other_formats_and_rates(tmp_path, fmt, ext, sr):
    path = tmp_path / f"a.{ext}"
    sf.write(path, tone(330, sr, 0.5, np.random.default_rng(0)), sr, format=fmt)
    wave, out_sr = load_audio(path, 16000)
    assert out_sr == 16000 and abs(len(wave) - 8000) < 1200
    assert abs(peak_hz(wave, 16000) - 330) <= 4
    assert audio_duration(path) == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize("container,codec", [("mp4", "aac"), ("flv", "mp3")])
def test_audio_track_of_video_containers(tmp_path, container, codec):
    path = write_av(tmp_path / f"clip.{container}", tone(523, 44100, 0.6, np.random.default_rng(0)),
                    44100, container=container, audio_codec=codec)
    wave, sr = load_audio(path, 16000)
    assert sr == 16000 and abs(len(wave) - 9600) < 2000
    assert abs(peak_hz(wave, 16000) - 523) <= 4
    assert audio_duration(path) == pytest.approx(0.6, abs=0.15)


def test_unreadable_files_raise_a_clear_error(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEnot really")
    with pytest.raises(AudioReadError, match=r"broken\.wav: cannot read audio.*ffmpeg"):
        load_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioReadError, match="empty.wav: the file holds no audio samples"):
        load_audio(empty)
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"\x00" * 64)
    with pytest.raises(AudioReadError, match="broken.mp4"):
        load_audio(bad_video)
    silent_video = tmp_path / "novoice.mp4"
    import av
    with av.open(str(silent_video), "w") as out:
        vs = out.add_stream("mpeg4", rate=5)
        vs.width = vs.height = 16
        vs.pix_fmt = "yuv420p"
        for _ in range(3):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
    with pytest.raises(AudioReadError, match="novoice.mp4: the file has no audio track"):
        load_audio(silent_video)
    assert issubclass(AudioReadError, ValueError)
    with pytest.raises(AudioReadError, match="no such file"):
        load_audio(tmp_path / "missing.wav")


def test_crop_pad_and_trim():
    rng = np.random.default_rng(0)
    x = np.arange(10, dtype=np.float32)
    assert crop_or_pad(x, 4, random=False).tolist() == [3, 4, 5, 6]
    crops = {tuple(crop_or_pad(x, 4, random=True, rng=rng)) for _ in range(50)}
    assert len(crops) > 3 and all(len(c) == 4 for c in crops)
    assert crop_or_pad(x, 12, random=False).tolist() == list(range(10)) + [0, 0]
    assert len(crop_or_pad(x, 12, random=False, pad=False)) == 10
    sr = 16000
    speech = np.concatenate([np.zeros(sr), tone(300, sr, 1.0, rng), np.zeros(sr)])
    trimmed = trim_silence(speech, sr, top_db=30, margin_s=0.05)
    assert 1.0 <= len(trimmed) / sr <= 1.2


def test_each_augmentation_switches_on_and_off():
    sr, rng = 16000, np.random.default_rng(0)
    x = tone(300, sr, 1.0, rng)
    off = WaveAugment()
    assert not off.active and np.array_equal(off(x, sr, rng), x)
    assert WaveAugment.from_config(None) is None
    assert WaveAugment.from_config({"enabled": False, "gain_db": 6}) is None
    with pytest.raises(ValueError, match="unknown options.*gain"):
        WaveAugment.from_config({"gian_db": 3})

    gain = WaveAugment(gain_db=6.0)
    ratios = [np.abs(gain(x, sr, rng)).max() / np.abs(x).max() for _ in range(30)]
    assert min(ratios) >= 10 ** (-6 / 20) - 1e-6 and max(ratios) <= 10 ** (6 / 20) + 1e-6
    assert max(ratios) / min(ratios) > 1.5

    noisy = WaveAugment(noise_snr_db=[10, 10], noise_p=1.0)(x, sr, rng)
    snr = 10 * np.log10(np.mean(x ** 2) / np.mean((noisy - x) ** 2))
    assert snr == pytest.approx(10, abs=0.5)

    shifted = WaveAugment(shift_s=0.1, shift_p=1.0)(x, sr, rng)
    assert len(shifted) == len(x) and not np.array_equal(shifted, x)

    speed = WaveAugment(speed=[1.2, 1.2], speed_p=1.0)
    fast = speed.perturb_speed(x, rng)
    assert len(fast) == pytest.approx(len(x) / 1.2, abs=2)
    assert peak_hz(fast, sr) == pytest.approx(360, abs=3)   # tempo and pitch change together


def test_clip_options_train_is_random_eval_is_centred():
    opts = ClipOptions(sample_rate=10, duration=1.0)
    x = np.arange(30, dtype=np.float16)
    ev = opts.to_model_input(x, train=False, augment=None, rng=None)
    assert ev.dtype == torch.float32 and ev.tolist() == list(range(10, 20))
    starts = {int(opts.to_model_input(x, train=True, augment=None, rng=np.random.default_rng(i))[0])
              for i in range(20)}
    assert len(starts) > 3
    short = ClipOptions(sample_rate=10, duration=1.0, pad=False)
    assert len(short.to_model_input(x[:6], train=False, augment=None, rng=None)) == 6
