"""Printable documents (bills, statements, invoices): PDF written with fpdf2 in a CJK-capable font.

``fonts`` finds the font, ``pdf`` lays out a document from plain parts (title, key/value rows, tables, notes)
so every kind of document looks alike and reads back as text (tests use pypdf to check the contents).
"""
