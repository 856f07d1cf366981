"""Shared data of the use-case tests: documents about a fictional product, and the sentences whose questions
the extractive generator must get right."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAST_ANSWERS = ROOT / "tests" / "fixtures" / "usecase" / "past_answers.csv"

DOCS = {
    "pricing.md": """# Lumen pricing

## Lamps
The Lumen Mini lamp costs €39.
The Lumen Pro lamp costs €89 and includes a two-year warranty.
A replacement bulb pack of 4 bulbs costs €12.

## Shipping
Orders ship within 2 business days.
You can return a lamp within 30 days of delivery.
""",
    "app.txt": """Lumen app

The Lumen app supports 3 languages.
A scene holds up to 12 lamps.
Firmware updates are checked every 6 hours.
Error LM-4040 means the lamp lost its Wi-Fi connection.
The pairing code is valid for 10 minutes.
""",
    "warranty.md": """# Warranty and returns

Refunds are issued within 5 business days.
The warranty does not cover water damage.
""",
    "faq.html": """<html><head><title>Lumen FAQ</title></head><body><h1>Lumen FAQ</h1>
<p>The Lumen hub connects up to 50 lamps.</p>
<p>Support answers emails within 24 hours.</p></body></html>
""",
}
# sentence -> (words the question must contain, the keyword it must carry)
EXPECTED = {
    "The Lumen Pro lamp costs €89 and includes a two-year warranty.": (["how much", "lumen pro lamp", "cost"], "89"),
    "A scene holds up to 12 lamps.": (["how many lamps", "scene", "hold"], "12"),
    "Error LM-4040 means the lamp lost its Wi-Fi connection.": (["what does", "lm-4040", "mean"], None),
    "The pairing code is valid for 10 minutes.": (["how long", "pairing code", "valid"], "10"),
    "Refunds are issued within 5 business days.": (["how many days", "refunds", "issued"], "5"),
    "The Lumen hub connects up to 50 lamps.": (["how many lamps", "lumen hub", "connect"], "50"),
}


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
