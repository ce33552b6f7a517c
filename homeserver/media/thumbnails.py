"""Thumbnails with Pillow: which configured size answers a request, and making it.

Everything that decodes an image is blocking and runs in a thread (the repository sees to it).
Only JPEG, PNG (and APNG), GIF and WebP are ever decoded, whatever the uploader claims: each
decoder is attack surface, and these are the formats clients send.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from homeserver.config import ThumbnailSize
from storage.media import ImageInfo

_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")

# Content types we try to thumbnail (image/jpg is a common misspelling of image/jpeg).
THUMBNAILABLE_TYPES = frozenset(
    {"image/jpeg", "image/jpg", "image/png", "image/apng", "image/gif", "image/webp"}
)
# What a thumbnail response may be (the spec's list): an original in one of these types can be
# served as its own thumbnail when it is smaller than the request.
THUMBNAIL_RESPONSE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/apng", "image/gif", "image/webp"}
)

# EXIF orientations that turn the image a quarter: width and height swap on display.
_ROTATED = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 0x0112
# An animated thumbnail decodes every frame: allow this many times max_image_pixels in total
# before falling back to the first frame.
_ANIMATION_BUDGET = 4


class CannotThumbnail(Exception):
    """Not an image we can read (400)."""


class ImageTooLarge(Exception):
    """More pixels than max_image_pixels (413)."""


def base_type(media_type: str | None) -> str:
    return (media_type or "").split(";", 1)[0].strip().lower()


def can_thumbnail(media_type: str | None) -> bool:
    return base_type(media_type) in THUMBNAILABLE_TYPES


def choose_size(
    sizes: Sequence[ThumbnailSize], width: int, height: int, method: str
) -> ThumbnailSize | None:
    """The configured size that answers a request for width x height by `method`.

    The spec asks for a thumbnail no smaller than requested, so the smallest size that covers
    the request wins (for crop, one with the requested aspect ratio first); when none covers it,
    the largest there is. Sizes of the other method are only used when none has this one.
    """
    candidates = [s for s in sizes if s.method == method] or list(sizes)
    if not candidates:
        return None
    covering = [s for s in candidates if s.width >= width and s.height >= height]
    if covering:

        def aspect_miss(s: ThumbnailSize) -> float:
            return abs(math.log((s.width * height) / (s.height * width))) if method == "crop" else 0

        return min(covering, key=lambda s: (round(aspect_miss(s), 3), s.width * s.height))
    return max(candidates, key=lambda s: (s.width * s.height, -abs(s.width - width)))


def thumbnail_type(source_type: str | None, animated: bool) -> str:
    """The content type of a thumbnail: WebP when animated (the spec's preference), JPEG for
    JPEG photos (PNG would be much larger), PNG otherwise (keeps transparency)."""
    if animated:
        return "image/webp"
    return "image/jpeg" if base_type(source_type) in ("image/jpeg", "image/jpg") else "image/png"


def probe_image(data: bytes, media_type: str | None, max_pixels: int) -> ImageInfo | None:
    """Size (as displayed) and animation of an uploaded image; None if we cannot read it.
    Reads headers only: no pixel data is decoded."""
    if not can_thumbnail(media_type):
        return None
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as im:
            width, height = im.size
            if im.getexif().get(_EXIF_ORIENTATION) in _ROTATED:
                width, height = height, width
            if width * height > max_pixels:
                # Never thumbnailed, so whether it moves does not matter.
                return ImageInfo(width, height, False)
            # is_animated may read through the frames: only for images we would thumbnail.
            return ImageInfo(width, height, bool(getattr(im, "is_animated", False)))
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


def make_thumbnail(path: str, size: ThumbnailSize, output_type: str, max_pixels: int) -> bytes:
    """Encodes the thumbnail of the image at `path` for one configured size. Never upscales.

    Raises CannotThumbnail or ImageTooLarge.
    """
    try:
        with Image.open(path, formats=_FORMATS) as im:
            if im.width * im.height > max_pixels:
                raise ImageTooLarge()
            frames = getattr(im, "n_frames", 1)
            if output_type == "image/webp" and frames * im.width * im.height <= (
                max_pixels * _ANIMATION_BUDGET
            ):
                return _animated_webp(im, size)
            return _encode(_static_thumbnail(im, size, output_type), output_type)
    except Image.DecompressionBombError:
        raise ImageTooLarge() from None
    except (OSError, ValueError, UnidentifiedImageError, EOFError) as e:
        raise CannotThumbnail(str(e)) from None


def _static_thumbnail(im: Image.Image, size: ThumbnailSize, output_type: str) -> Image.Image:
    if output_type == "image/jpeg" and im.format == "JPEG":
        _draft(im, size)
    im = ImageOps.exif_transpose(im)
    return _resize(_normalise_mode(im), size)


def _draft(im: Image.Image, size: ThumbnailSize) -> None:
    """Lets the JPEG decoder skip detail we would throw away: decoding at 1/2, 1/4 or 1/8 scale
    is much faster and smaller for big photos. The draft is never smaller than the target."""
    width, height = im.size
    if im.getexif().get(_EXIF_ORIENTATION) in _ROTATED:
        width, height = height, width
    ratio = _ratio(width, height, size)
    if ratio < 1:
        need = (math.ceil(width * ratio), math.ceil(height * ratio))
        if im.getexif().get(_EXIF_ORIENTATION) in _ROTATED:
            need = (need[1], need[0])
        im.draft("RGB", need)


def _ratio(width: int, height: int, size: ThumbnailSize) -> float:
    """The scale factor to the target: covering it for crop, fitting inside it for scale."""
    ratios = (size.width / width, size.height / height)
    return max(ratios) if size.method == "crop" else min(ratios)


def _resize(im: Image.Image, size: ThumbnailSize) -> Image.Image:
    width, height = im.size
    target_w, target_h = size.width, size.height
    if size.method == "crop":
        if width >= target_w and height >= target_h:
            return ImageOps.fit(im, (target_w, target_h), method=Image.Resampling.LANCZOS)
        # Smaller than the target: only cut it to the target's aspect ratio, at its own scale.
        if width * target_h > height * target_w:
            new_w = max(1, height * target_w // target_h)
            left = (width - new_w) // 2
            return im.crop((left, 0, left + new_w, height))
        new_h = max(1, width * target_h // target_w)
        top = (height - new_h) // 2
        return im.crop((0, top, width, top + new_h))
    if width <= target_w and height <= target_h:
        return im.copy()
    ratio = _ratio(width, height, size)
    new_size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    return im.resize(new_size, Image.Resampling.LANCZOS)


def _normalise_mode(im: Image.Image) -> Image.Image:
    """RGB or RGBA (or greyscale), which every resize filter and encoder handles."""
    if im.mode in ("RGB", "RGBA", "L", "LA"):
        return im
    has_alpha = "A" in im.getbands() or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")


def _encode(im: Image.Image, output_type: str) -> bytes:
    out = io.BytesIO()
    if output_type == "image/jpeg":
        im.convert("RGB").save(out, "JPEG", quality=80, optimize=True)
    elif output_type == "image/webp":
        im.save(out, "WEBP", quality=80)
    else:
        im.save(out, "PNG")
    return out.getvalue()


def _animated_webp(im: Image.Image, size: ThumbnailSize) -> bytes:
    frames = []
    durations = []
    for frame in ImageSequence.Iterator(im):
        frames.append(_resize(frame.convert("RGBA"), size))
        durations.append(frame.info.get("duration") or 100)
    out = io.BytesIO()
    frames[0].save(
        out,
        "WEBP",
        save_all=len(frames) > 1,
        append_images=frames[1:],
        duration=durations,
        loop=im.info.get("loop", 0),
        quality=80,
    )
    return out.getvalue()
