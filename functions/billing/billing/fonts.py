"""The fonts embedded in invoice and credit-note PDFs: Source Sans Pro (SIL Open Font License 1.1), installed from the
package index with the function (`font-source-sans-pro` in requirements.txt), so it is there in the Cloud Functions
runtime with nothing from the system. It covers Latin for every EU language, Greek and Cyrillic, so every name and
address is drawn, and lands in the PDF's text layer, exactly as given.

Cold start: nothing here runs on import. The first PDF an instance draws prepares the face once (cut down to
the scripts invoices are written in, without the layout and hinting tables a PDF does not use, which keeps each
document's subsetting fast) and keeps it in the instance's temporary folder; each PDF then embeds only the
glyphs it uses. Each face is parsed once per instance too: a PDF gets a fresh copy of the parsed face, never the
file read again.
"""

from __future__ import annotations

import copy
import tempfile
import threading
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

FAMILY = "Sans"
FACES = {"": "SourceSansPro-Regular.ttf"}  # bold is drawn from it (rendering._strong): one face per PDF
# What the languages of the EU (and their neighbours' names) are written in: Basic Latin, Latin-1, Latin
# Extended-A, the Romanian ș and ț (and ƒ) of Latin Extended-B, the modifier letters of their accents, Greek,
# Cyrillic (with Ukrainian Ґ), punctuation, currency signs (€), letterlike symbols (№) and the minus sign. Fewer
# glyphs make every PDF's subsetting faster.
RANGES = ((0x20, 0x7E), (0xA0, 0x17F), (0x192, 0x192), (0x218, 0x21B), (0x2C6, 0x2DD), (0x370, 0x3FF),
          (0x400, 0x45F), (0x490, 0x491), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2190, 0x2193),
          (0x2212, 0x2212))
_lock = threading.Lock()


def source(face_file: str) -> Path:
    from importlib.resources import files

    return Path(str(files("font_source_sans_pro") / "files" / face_file))


def covered(text: str) -> bool:
    """Whether every character of `text` is in the ranges the PDFs' fonts are prepared with."""
    return all(any(low <= ord(c) <= high for low, high in RANGES) or c in "\n\t" for c in text)


@cache
def prepared() -> dict[str, Path]:
    """Each style's face, cut down to RANGES without layout or hinting tables, in a temporary folder."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    folder = Path(tempfile.mkdtemp(prefix="energent-fonts-"))
    found = {}
    for style, face_file in FACES.items():
        font = TTFont(str(source(face_file)))
        options = subset.Options()
        options.layout_features = []
        options.hinting = False
        options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "kern", "DSIG", "hdmx", "FFTM", "gasp"]
        options.notdef_outline = options.recommended_glyphs = options.glyph_names = True
        options.name_IDs, options.name_languages, options.name_legacy = ["*"], ["*"], True
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=[c for low, high in RANGES for c in range(low, high + 1)])
        subsetter.subset(font)
        cmap = font["cmap"]
        cmap.tables = [table for table in cmap.tables if (table.platformID, table.platEncID) == (3, 1)]  # one map
        found[style] = folder / face_file
        font.save(str(found[style]))
    return found


@cache
def _parsed(style: str) -> tuple[Any, bytes]:
    """The face parsed once by fpdf2 (widths, character map), and its file's bytes."""
    from fpdf import FPDF

    path = prepared()[style]
    pdf = FPDF()
    pdf.add_font(FAMILY, style, str(path))
    return pdf.fonts[f"{FAMILY.lower()}{style}"], path.read_bytes()


def add_to(pdf: Any) -> str:
    """Make the face available to `pdf` as FAMILY; returns the family name.

    fpdf2 keeps, per document, the glyphs used (`subset`), subsets its own copy of the face (`ttfont`) and fills
    in the descriptor (`desc`) when it writes the file; everything else of a parsed face is the same for every
    document and is shared."""
    from fontTools.ttLib import TTFont
    from fpdf.fonts import SubsetMap

    with _lock:
        faces = {style: _parsed(style) for style in FACES}
    for style, (template, data) in faces.items():
        font = copy.copy(template)
        font.i = len(pdf.fonts) + 1
        # Writing a document sets its font file and object id on the face's descriptor: each document has its own,
        # or two drawn at once on two threads would take each other's glyphs.
        font.desc = copy.copy(template.desc)
        # Glyph outlines are copied as they are: their bounds are known, so none is unpacked and packed again.
        font.ttfont = TTFont(BytesIO(data), recalcTimestamp=False, recalcBBoxes=False, lazy=True)
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font.subset = SubsetMap(font)
        pdf.fonts[f"{FAMILY.lower()}{style}"] = font
    return FAMILY
