import pytest

from emomm.data.core.speakers import (assert_disjoint, kfold_speakers, parse_cremad_name,
                                      parse_ravdess_name, speaker_splits)


def test_ravdess_names():
    n = parse_ravdess_name("x/Actor_12/03-01-05-02-02-01-12.flac")
    assert (n.modality, n.channel, n.emotion, n.intensity, n.actor, n.sex) == \
        ("audio-only", "speech", "angry", 2, 12, "female")
    assert parse_ravdess_name("01-02-02-01-01-01-01.mp4").emotion == "calm"
    for bad in ["03-01-09-01-01-01-01.wav", "03-01-05-01-01-01.wav", "notes.wav"]:
        with pytest.raises(ValueError, match="RAVDESS"):
            parse_ravdess_name(bad)


def test_cremad_names():
    n = parse_cremad_name("1091_TIE_SAD_HI.wav")
    assert (n.actor, n.sentence, n.emotion, n.level) == (1091, "TIE", "sad", "high")
    with pytest.raises(ValueError, match="CREMA-D"):
        parse_cremad_name("1091_TIE_XYZ_HI.wav")


def test_kfold_tests_every_speaker_once_and_never_mixes():
    tested = []
    for k in range(5):
        s = kfold_speakers(range(1, 21), k)
        assert_disjoint(s)
        assert sorted(s["train"] + s["val"] + s["test"]) == list(range(1, 21))
        tested += s["test"]
    assert sorted(tested) == list(range(1, 21))


def test_explicit_speaker_lists():
    s = speaker_splits(range(1, 21), val=[17, 18, 19, 20], test=[])
    assert s["train"] == list(range(1, 17)) and s["test"] == []
    with pytest.raises(ValueError, match="speaker 3 is in both"):
        speaker_splits(range(1, 21), train=[1, 2, 3], val=[3, 4], test=[5])
    with pytest.raises(ValueError, match="must be in 0..4"):
        speaker_splits(range(1, 21), fold=5)
    with pytest.raises(ValueError, match="both set"):
        speaker_splits(range(1, 21), val=[17], fold=1)
    assert speaker_splits(range(1, 21)) == kfold_speakers(range(1, 21), 0)  # default protocol
