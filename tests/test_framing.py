"""Framer: whole frames out, remainder carried, padding only at flush."""

from app.audio.framing import Framer


def test_remainder_is_carried_over_to_the_next_push():
    f = Framer(4, 0xFF)
    assert f.push(b"abc") == []
    assert f.push(b"defgh") == [b"abcd", b"efgh"]
    assert f.push(b"ij") == []
    assert f.pending == 2
    assert f.push(b"klmnop") == [b"ijkl", b"mnop"]
    assert f.pending == 0


def test_pushes_never_pad_only_flush_pads_the_last_frame():
    f = Framer(160, 0xFF)
    sizes = (1, 159, 7, 300, 17)
    frames = []
    for n in sizes:
        frames += f.push(bytes([1]) * n)
    assert all(len(fr) == 160 and 0xFF not in fr for fr in frames)
    assert len(frames) == sum(sizes) // 160 == 3
    last = f.flush()
    rest = sum(sizes) % 160
    assert last == [bytes([1]) * rest + bytes([0xFF]) * (160 - rest)]
    assert f.flush() == []


def test_flush_after_whole_frames_adds_nothing():
    f = Framer(3, 0xD5)
    assert f.push(b"abcdef") == [b"abc", b"def"]
    assert f.flush() == []


def test_flush_with_nothing_pushed_adds_nothing():
    assert Framer(160, 0xFF).flush() == []
