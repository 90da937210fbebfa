"""Tiny voice datasets in their real on-disk formats (RAVDESS, CREMA-D), for the voice tests."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

# One tone per RAVDESS emotion code 01..08 (learnable, tiny).
TONE_HZ = {1: 220, 2: 262, 3: 330, 4: 392, 5: 440, 6: 523, 7: 587, 8: 659}


def tone(freq: float, sr: int, seconds: float, rng: np.random.Generator, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    wave = amp * np.sin(2 * np.pi * freq * t) * np.hanning(len(t)) ** 0.2
    return (wave + rng.normal(0, 0.01, len(t))).astype(np.float32)


def write_av(path: Path, wave: np.ndarray, sr: int, container: str = "mp4",
             audio_codec: str = "aac", video: bool = True) -> Path:
    """A small audio(+video) container file written with PyAV (mono float input)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container) as out:
        vs = None
        if video:
            vs = out.add_stream("mpeg4" if container != "flv" else "flv", rate=10)
            vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        a = out.add_stream(audio_codec, rate=sr)
        a.layout = "mono"
        fmt = a.codec_context.format.name if a.codec_context.format else "fltp"
        frame_size = a.codec_context.frame_size or 1024
        pts = 0
        for start in range(0, len(wave), frame_size):
            chunk = wave[start:start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            if fmt.startswith("s16"):
                arr = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)[None]
            elif fmt.startswith("s32"):
                arr = (np.clip(chunk, -1, 1) * (2**31 - 1)).astype(np.int32)[None]
            else:
                arr = chunk.astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(arr, format=fmt, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sr, pts, Fraction(1, sr)
            pts += frame_size
            for packet in a.encode(frame):
                out.mux(packet)
        for packet in a.encode(None):
            out.mux(packet)
        if vs is not None:
            for i in range(int(len(wave) / sr * 10)):
                img = np.full((32, 32, 3), (i * 20) % 255, np.uint8)
                for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in vs.encode(None):
                out.mux(packet)
    return path


def ravdess_name(emotion: int, actor: int, modality: int = 3, channel: int = 1, intensity: int = 1,
                 statement: int = 1, repetition: int = 1) -> str:
    return f"{modality:02d}-{channel:02d}-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"


def write_ravdess_tree(root: Path, actors=range(1, 7), seconds: float = 0.5) -> dict:
    """A RAVDESS tree in the real naming convention.

    * actors in ``Actor_NN/`` folders at different depths (``Audio_Speech_Actors_01-24/``,
      ``deeper/still/``);
    * odd actors: 48 kHz ``.wav``; even actors: 16 kHz ``.flac``; one stereo file;
    * per actor: 8 speech clips (one per emotion) and 2 song clips (happy, sad);
    * one corrupt ``.wav``, one badly named file, one video-only ``02-`` file (ignored),
      and one audio-video ``01-`` ``.mp4`` whose audio track is read (actor 2, a second
      repetition of angry).

    Returns what the tree holds, for the assertions.
    """
    rng = np.random.default_rng(0)
    info = {"speech": 0, "song": 0, "calm": 0, "actors": list(actors)}
    for actor in actors:
        base = root / ("Audio_Speech_Actors_01-24" if actor <= 3 else "deeper/still")
        d = base / f"Actor_{actor:02d}"
        d.mkdir(parents=True, exist_ok=True)
        sr, ext = (48000, "wav") if actor % 2 else (16000, "flac")
        for emotion in range(1, 9):
            wave = tone(TONE_HZ[emotion], sr, seconds * rng.uniform(0.8, 1.4), rng)
            if actor == 1 and emotion == 5:  # the stereo file
                wave = np.stack([wave, 0.5 * wave], axis=1)
            sf.write(d / f"{ravdess_name(emotion, actor)}.{ext}", wave, sr)
            info["speech"] += 1
            info["calm"] += emotion == 2
        for emotion in (3, 4):
            sf.write(d / f"{ravdess_name(emotion, actor, channel=2)}.{ext}",
                     tone(TONE_HZ[emotion], sr, seconds, rng), sr)
            info["song"] += 1
    corrupt = root / "Audio_Speech_Actors_01-24" / "Actor_03" / f"{ravdess_name(2, 3, repetition=2)}.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    malformed = root / "Audio_Speech_Actors_01-24" / "Actor_01" / "03-01-09-01-01-01-01.wav"
    sf.write(malformed, tone(300, 16000, seconds, rng), 16000)
    video_only = root / "deeper" / "still" / "Actor_04" / f"{ravdess_name(5, 4, modality=2)}.mp4"
    video_only.write_bytes(b"not read: video-only files are skipped by name")
    av_file = write_av(root / "Video_Speech" / "Actor_02" / f"{ravdess_name(5, 2, modality=1, repetition=2)}.mp4",
                       tone(TONE_HZ[5], 44100, seconds, rng), 44100)
    info.update(corrupt=corrupt, malformed=malformed, video_only=video_only, av_file=av_file)
    info["speech"] += 1  # the audio-video clip
    return info


CREMAD_EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


def write_cremad_tree(root: Path, actors=range(1001, 1011), seconds: float = 0.4) -> dict:
    """CREMA-D-style AudioWAV/ (16 kHz wav) plus one AudioMP3/ duplicate and one FLV."""
    rng = np.random.default_rng(1)
    wav_dir = root / "AudioWAV"
    wav_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    for actor in actors:
        for k, emo in enumerate(CREMAD_EMOTIONS):
            level = ("LO", "MD", "HI", "XX")[k % 4]
            sf.write(wav_dir / f"{actor}_DFA_{emo}_{level}.wav", tone(200 + 80 * k, 16000, seconds, rng), 16000)
            n += 1
    # Same clip as MP3 (a duplicate: the WAV is used) and a new clip only as FLV video.
    mp3 = root / "AudioMP3" / f"{actors[0]}_DFA_ANG_LO.mp3"
    mp3.parent.mkdir(parents=True)
    sf.write(mp3, tone(200, 44100, seconds, rng), 44100, format="MP3")
    flv = write_av(root / "VideoFlash" / f"{actors[0]}_IEO_SAD_HI.flv", tone(600, 44100, seconds, rng),
                   44100, container="flv", audio_codec="mp3")
    bad = wav_dir / "1001_DFA_XYZ_XX.wav"
    sf.write(bad, tone(300, 16000, seconds, rng), 16000)
    return {"clips": n + 1, "actors": list(actors), "flv": flv, "mp3": mp3, "bad": bad}
