"""Image decoding: orientation, reduced-scale JPEG decoding, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests import synth
from usbills_app.errors import ApiError
from usbills_app.imaging import decode, to_array


@pytest.mark.parametrize("orientation, size", [(1, (300, 200)), (3, (300, 200)),
                                               (6, (200, 300)), (8, (200, 300))])
def test_exif_orientation_applied(orientation, size):
    img = Image.new("RGB", (300, 200), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 60, 60))  # red square top-left as stored
    out = decode(synth.jpeg(img, exif_orientation=orientation), (400, 400), 10**8)
    assert out.size == size
    corner = {1: (5, 5), 3: (size[0] - 5, size[1] - 5), 6: (size[0] - 5, 5), 8: (5, size[1] - 5)}
    r, g, b = out.getpixel(corner[orientation])
    assert r > 200 and g < 60 and b < 60


def test_big_jpeg_decoded_at_reduced_scale():
    data = synth.jpeg(synth.photo((4000, 3000)))
    out = decode(data, (224, 224), 10**8)
    # libjpeg's 1/8 scale: 500x375, still at least the model's input size.
    assert out.size == (500, 375)


def test_small_jpeg_not_reduced_below_target():
    out = decode(synth.jpeg(synth.photo((600, 400))), (224, 224), 10**8)
    assert min(out.size) >= 224


def test_to_array_normalises():
    inp = {"height": 4, "width": 4, "channels": 3, "scale": 1 / 255,
           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    x = to_array(Image.new("RGB", (10, 10), (255, 0, 255)), inp)
    assert x.shape == (4, 4, 3) and x.dtype == np.float32
    assert np.allclose(x[0, 0], [1, -1, 1], atol=1e-5)


def test_grey_model_input():
    out = decode(synth.jpeg(synth.bill()), (8, 8), 10**8, mode="L")
    x = to_array(out, {"height": 8, "width": 8, "channels": 1, "scale": 1.0})
    assert x.shape == (8, 8, 1)


def test_bomb_refused_before_decoding():
    with pytest.raises(ApiError) as e:
        decode(synth.encode(Image.new("L", (3000, 3000)), "PNG"), (32, 32), 1_000_000)
    assert e.value.status == 422 and e.value.code == "image_too_large"


def test_heic_orientation_applied_once():
    # pillow-heif turns EXIF orientation into the HEIF transform and reports 1 when reading:
    # the photo must come out upright, not rotated twice.
    img = Image.new("RGB", (300, 200), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 60, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = decode(synth.encode(img, "HEIF", exif=exif.tobytes()), (400, 400), 10**8)
    assert out.size == (200, 300)
    r, g, b = out.getpixel((195, 5))
    assert r > 200 and g < 60 and b < 60


def _exif_blob() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "camera maker"
    return exif.tobytes()


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                      max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
def test_corrupt_exif_never_crashes(flips, cut):
    blob = bytearray(_exif_blob())
    for pos, val in flips:
        blob[pos % len(blob)] = val
    if cut is not None:
        blob = blob[: cut % len(blob)]
    try:
        data = synth.encode(Image.new("RGB", (64, 48), (255, 0, 0)), "JPEG", exif=bytes(blob))
    except Exception:
        return  # Pillow refused to write it: nothing to test
    try:
        out = decode(data, (32, 32), 10**8)
    except ApiError as e:
        assert e.status == 422
    else:
        assert sorted(out.size) == [48, 64]


def test_jpeg_with_thousands_of_scans_is_refused_before_decoding():
    """A progressive-JPEG scan bomb: its decode time grows with the number of scans."""
    import io
    import time

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    sos = data.index(b"\xff\xda")
    bomb = data[:-2] + data[sos:-2] * 300 + b"\xff\xd9"  # the scans again and again
    t0 = time.perf_counter()
    with pytest.raises(ApiError) as e:
        decode(bomb, (256, 256), 50_000_000)
    assert e.value.status == 422 and "scans" in e.value.message
    assert time.perf_counter() - t0 < 1
    assert decode(data, (256, 256), 50_000_000).size == (64, 64)  # a normal progressive one


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_full_size_formats_have_a_lower_pixel_cap_than_jpeg(fmt):
    """PNG/WebP/HEIC decode at full size (a 2 KB lossless WebP can be 50 M pixels): at most
    13 M pixels; a JPEG of the same size decodes at reduced scale and is accepted."""
    import io

    big = Image.new("RGB", (4000, 3500))  # 14 M pixels
    buf = io.BytesIO()
    big.save(buf, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    with pytest.raises(ApiError) as e:
        decode(buf.getvalue(), (256, 256), 50_000_000)
    assert e.value.status == 422 and "at most 13000000" in e.value.message
    buf = io.BytesIO()
    big.save(buf, "JPEG")
    assert max(decode(buf.getvalue(), (256, 256), 50_000_000).size) < 1000
    phone = Image.new("RGB", (4032, 3024))  # a 12 MP phone picture is fine in any format
    buf = io.BytesIO()
    phone.save(buf, "PNG")
    assert decode(buf.getvalue(), (256, 256), 50_000_000).size == (4032, 3024)
