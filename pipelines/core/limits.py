"""Limits on what the studio accepts and keeps: every number in one place, each with why.

The data loaders (the CLI and the page alike) check image, zip, text and table sizes before
anything is decoded or read whole; the page also limits what a browser may send and how many
sample pictures it keeps. The values are read when they are used, so a test (or a site that
needs other numbers) can change them here. No imports: torch-free, gradio-free.
"""

# --- what a data set may hold (pipelines/data: folder:, text:, csv:) ------------------------

# Pixels in one picture. The largest camera photos are ~50 million pixels (8160x6120); the
# studio trains at 1024x1024 at most, and decoding 64 million RGB pixels already takes ~200 MB
# and a second of CPU. A PNG of 13000x13000 (169 million) compresses to a few KB: refused.
MAX_IMAGE_PIXELS = 64_000_000

# Bytes of one image file or zip entry. A 50-million-pixel JPEG is ~20 MB, a PNG of one rarely
# over 100 MB; anything bigger is not a picture worth shrinking to 1024 pixels (and a zip entry
# is read into memory, so this is also the most one entry may cost).
MAX_IMAGE_FILE_BYTES = 100 * 2**20

# Uncompressed bytes of a whole zip of images: zips are read in place, never extracted, but a
# zip bomb would still be decompressed entry by entry. 2 GB is ~100,000 typical photos.
MAX_UNZIPPED_BYTES = 2 * 2**30

# Entries in a zip, or files in an image folder: each one is opened; 200,000 is four times the
# largest bundled-style image set anyone trains here (CIFAR-sized sets are 60,000).
MAX_DATA_FILES = 200_000

# Bytes of a text file. Shakespeare is 1.1 MB; 256 MB of text is ~1 GB in memory once decoded
# and split, and a character model here never gets through that much anyway.
MAX_TEXT_BYTES = 256 * 2**20

# Bytes of an image set's captions: one sidecar caption file (x.txt beside x.png), or its
# metadata.jsonl (a line per image). A caption is a sentence or a few; prompts past the text
# encoder's length are cut anyway.
MAX_CAPTION_FILE_BYTES = 64 * 2**10
MAX_CAPTION_INDEX_BYTES = 64 * 2**20

# Bytes of a CSV table: pandas needs several times the file size in memory.
MAX_TABLE_BYTES = 256 * 2**20

# Pictures one tool call takes (its --input files, a zip's pictures counted one by one): a
# tool's result is one grid of them, and 256 rows is already more than a page shows whole.
MAX_TOOL_INPUTS = 256

# --- what a browser may send (studio/) ------------------------------------------------------

# One uploaded file, enforced by Gradio's upload route while the request streams in (nothing
# bigger is ever stored). Zips of a few thousand photos fit; larger sets belong in a folder
# on the server, allowed with launch.py --data-dir.
MAX_UPLOAD_BYTES = 512 * 2**20

# Any one request to a studio: an upload plus room for the form around it. A read-only studio
# (--viewer) takes no uploads; its requests are JSON and the drawing pad's strokes (PNGs of a
# 280x280 canvas), a few hundred KB at most.
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 2**20
MAX_VIEWER_REQUEST_BYTES = 4 * 2**20

# Files Gradio keeps from uploads are deleted this long after they arrive (and all of them
# when the studio stops); an upload is copied into the runs folder's .data/ at once, so the
# original is never needed again. Checked every UPLOAD_SWEEP_SECONDS.
UPLOAD_MAX_AGE_SECONDS = 24 * 3600
UPLOAD_SWEEP_SECONDS = 3600

# --- what the page keeps of samples (runs folder/.ui/) --------------------------------------

# Batches (sample, walk, tool result) kept per browser session; the page shows only the latest,
# a few more keep a recent download link working. All of a session's go when it is closed.
OUTPUT_BATCHES_PER_SESSION = 8

# Bytes of sample pictures kept for all sessions together; the oldest batches go first. 256
# pictures at 1024x1024 are ~500 MB, so this holds at least two of the largest batches.
OUTPUT_MAX_BYTES = 1 * 2**30

# Pictures older than this are deleted whatever the session (also ones left by a studio that
# stopped); a batch younger than OUTPUT_MIN_AGE_SECONDS is never deleted to make room, so a
# page is not left with pictures deleted before it could show them.
OUTPUT_MAX_AGE_SECONDS = 24 * 3600
OUTPUT_MIN_AGE_SECONDS = 60

# --- the generation history (runs folder/outputs/) --------------------------------------------

# Every batch drawn on the Images tab is also kept in outputs/, with its settings in its PNGs,
# until the history holds this many bytes; then the oldest batches go. ~8,000 batches of 16
# digits, or ~1,000 of 16 pictures at 256 px.
HISTORY_MAX_BYTES = 2 * 2**30
# The History view lists this many batches, newest first.
HISTORY_SHOWN = 200


def size_text(n: int | float) -> str:
    """Bytes for a message: '2.0 GB', '100 MB', '4 KB', '900 bytes'."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{int(n)} bytes"
