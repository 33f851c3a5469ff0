"""Printable documents (bills and statements): PDF written by the hub itself, in a CJK-capable font.

``fonts`` finds the font, ``truetype`` reads and subsets it, ``pdf_font`` turns it into a PDF font, ``pdf`` lays
out a document from plain parts (title, key/value rows, tables, notes) so every kind of document looks alike and
reads back as text, and ``pdf_file`` writes the objects. No PDF library: fpdf2's import and font parsing cost a
new container ~350 ms of CPU before the first line was drawn (docs/bills.md).
"""
